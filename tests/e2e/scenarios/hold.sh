# shellcheck shell=bash
# Debugging aid: keeps the cluster up (NVDP_E2E_HOLD_SECONDS, default 600) so it can be inspected, e.g.
#   NVDP_E2E_SCENARIOS="smoke hold" NVDP_E2E_KEEP=1 tests/e2e/run
# then, from another shell, enter the namespaces with the command printed below and use kubectl with
# KUBECONFIG=<scratch>/admin.kubeconfig (the scratch directory's bin/ holds kubectl). Ctrl-C ends it.
log "holding for ${NVDP_E2E_HOLD_SECONDS:-600}s; enter from the host with:"
echo "  nsenter -t \$(pgrep -f '^bash .*tests/e2e/inside') -m -n -p env KUBECONFIG=$KUBECONFIG PATH=$D/bin:\$PATH bash"
sleep "${NVDP_E2E_HOLD_SECONDS:-600}" &
wait $!
