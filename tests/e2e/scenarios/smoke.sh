# shellcheck shell=bash
# Smoke scenario: a pod with runtimeClassName: nvidia runs a locally built image to completion, its
# log is read through the API server (kubectl logs -> kubelet), and the "nvidia" runtime handler is the
# one that ran it (the simulated node's recording wrapper, or in the toolkit way NVIDIA's
# nvidia-container-runtime, whose trace log names the container). Without a GPU: NVIDIA_VISIBLE_DEVICES
# is "void" (no GPU, no driver files; "none" would make the toolkit's cdi mode fail the container with
# "unresolvable CDI devices nvidia.com/gpu=none"). The way without a toolkit (NVDP_E2E_GPU=cdi) has no
# "nvidia" handler: the pod runs with the default runtime.
# Sourced by tests/e2e/inside with the cluster up; KUBECONFIG points at it.

smoke_class=nvidia
[ "${NVDP_E2E_GPU:-}" = cdi ] && smoke_class=
if [ -n "$smoke_class" ]; then
        kubectl apply -f - <<'YAML'
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: nvidia}
handler: nvidia
YAML
fi
# Pods are admitted only once the controller-manager has created the namespace's ServiceAccount.
wait_for 60 "ServiceAccount default/default" kubectl get serviceaccount default
kubectl apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata: {name: smoke, namespace: default}
spec:
  ${smoke_class:+runtimeClassName: $smoke_class}
  restartPolicy: Never
  containers:
  - name: smoke
    image: localhost/nvdp-e2e/smoke:1
    imagePullPolicy: Never
    env: [{name: NVIDIA_VISIBLE_DEVICES, value: void}]
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
grep -qx 'NVIDIA_VISIBLE_DEVICES=void' <<<"$out" || die "pod smoke: log lacks NVIDIA_VISIBLE_DEVICES=void"
grep -qx 'pid=1' <<<"$out" || die "pod smoke: the workload was not PID 1 of its container"
cid=$(kubectl get pod smoke -o jsonpath='{.status.containerStatuses[0].containerID}')
cid=${cid#containerd://}
if [ -n "$smoke_class" ]; then
        grep -q "create .*$cid" "$RUNTIME_LOG" ||
                die "the nvidia runtime handler did not create container $cid (its log: $(tail -5 "$RUNTIME_LOG" 2>/dev/null))"
        log "smoke: pod ran to completion through runtime handler nvidia (container ${cid:0:12})"
else
        log "smoke: pod ran to completion with the default runtime (container ${cid:0:12})"
fi
kubectl delete pod smoke --wait=false >/dev/null
