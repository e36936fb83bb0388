module nvdp/tests/kube

go 1.22
