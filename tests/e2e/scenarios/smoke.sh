# shellcheck shell=bash
# Smoke scenario: a pod with runtimeClassName: nvidia runs a locally built image to completion, its
# log is read through the API server (kubectl logs -> kubelet), and the "nvidia" runtime handler (the
# stand-in for nvidia-container-runtime) is the one that ran it.
# Sourced by tests/e2e/inside with the cluster up; KUBECONFIG points at it.

kubectl apply -f - <<'YAML'
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: nvidia}
handler: nvidia
YAML
# Pods are admitted only once the controller-manager has created the namespace's ServiceAccount.
wait_for 60 "ServiceAccount default/default" kubectl get serviceaccount default
kubectl apply -f - <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: smoke, namespace: default}
spec:
  runtimeClassName: nvidia
  restartPolicy: Never
  containers:
  - name: smoke
    image: localhost/nvdp-e2e/smoke:1
    imagePullPolicy: Never
    env: [{name: NVIDIA_VISIBLE_DEVICES, value: none}]
YAML
smoke_done() {
        check_alive
        local p
        p=$(kubectl get pod smoke -o jsonpath='{.status.phase}')
        [ "$p" = Failed ] && { kubectl describe pod smoke >&3; die "pod smoke failed"; }
        [ "$p" = Succeeded ]
}
wait_for 90 "pod smoke Succeeded" smoke_done
kubectl get pod smoke -o wide
out=$(kubectl logs smoke)
printf '%s\n' "$out" | sed 's/^/  | /'
grep -qx 'nvdp-e2e smoke: hello from a pod' <<<"$out" || die "pod smoke: log lacks the greeting"
grep -qx 'NVIDIA_VISIBLE_DEVICES=none' <<<"$out" || die "pod smoke: log lacks NVIDIA_VISIBLE_DEVICES=none"
grep -qx 'pid=1' <<<"$out" || die "pod smoke: the workload was not PID 1 of its container"
cid=$(kubectl get pod smoke -o jsonpath='{.status.containerStatuses[0].containerID}')
cid=${cid#containerd://}
grep -q "create .*$cid" "$D/nvidia-runtime.calls" ||
        die "the nvidia runtime handler did not create container $cid (calls: $(cat "$D/nvidia-runtime.calls" 2>/dev/null))"
log "smoke: pod ran to completion through runtime handler nvidia (container ${cid:0:12})"
kubectl delete pod smoke --wait=false >/dev/null
