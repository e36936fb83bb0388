# SPDX-License-Identifier: Apache-2.0
"""NVML through ctypes (Python's standard library only): the few calls the GPU tools need to see a node
the way NVIDIA's own code sees it, on the real driver or on the simulated one (mock/nvml, loaded by path).

    node = read_node()            # or read_node("build/mock-nvml/libnvidia-ml.so.1")
    node["gpus"][0]["uuid"], node["levels"][(0, 1)], node["nvlinks"][0]

read_node() returns the versions, one dict per GPU (NVML's answers, unconverted where a fixture of the
simulated NVML takes them as they are), the PCIe level of every ordered GPU pair
(nvmlDeviceGetTopologyCommonAncestor) and every active NVLink of every GPU: its remote PCI address and the
remote device type (None where NVML does not say).
"""
import ctypes

SUCCESS = 0
ERROR_INVALID_ARGUMENT = 2
ERROR_NOT_SUPPORTED = 3
NVLINK_MAX_LINKS = 18
FEATURE_ENABLED = 1
DEVICE_MIG_ENABLE = 1

# nvmlBrandType_t and nvmlDeviceArchitecture_t, as the simulated NVML's fixtures name them
BRANDS = {0: "unknown", 1: "quadro", 2: "tesla", 3: "nvs", 4: "grid", 5: "geforce", 6: "titan", 12: "quadro-rtx",
          13: "nvidia-rtx", 14: "nvidia", 15: "geforce-rtx", 16: "titan-rtx"}
ARCHITECTURES = {2: "kepler", 3: "maxwell", 4: "pascal", 5: "volta", 6: "turing", 7: "ampere", 8: "ada", 9: "hopper",
                 10: "blackwell"}
# nvmlIntNvLinkDeviceType_t
LINK_TYPES = {0: "gpu", 1: "npu", 2: "switch"}
# nvmlGpuTopologyLevel_t, with nvidia-smi topo -m's name for each
LEVELS = {0: "BRD", 10: "PIX", 20: "PXB", 30: "PHB", 40: "NODE", 50: "SYS"}


class PciInfo(ctypes.Structure):
    _fields_ = [("busIdLegacy", ctypes.c_char * 16), ("domain", ctypes.c_uint), ("bus", ctypes.c_uint),
                ("device", ctypes.c_uint), ("pciDeviceId", ctypes.c_uint), ("pciSubSystemId", ctypes.c_uint),
                ("busId", ctypes.c_char * 32)]


class Memory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


class NvmlError(Exception):
    pass


class Nvml:
    def __init__(self, library=None):
        try:
            self.lib = ctypes.CDLL(library or "libnvidia-ml.so.1")
        except OSError as e:
            raise NvmlError(f"cannot load {library or 'libnvidia-ml.so.1'}: {e}") from e
        self.lib.nvmlErrorString.restype = ctypes.c_char_p
        self.check("nvmlInit_v2")

    def error(self, r):
        return self.lib.nvmlErrorString(r).decode(errors="replace")

    def call(self, name, *args):
        """The call's nvmlReturn_t (None when the library lacks it)."""
        fn = getattr(self.lib, name, None)
        return None if fn is None else fn(*args)

    def check(self, name, *args):
        r = self.call(name, *args)
        if r != SUCCESS:
            raise NvmlError(f"{name} failed: " + ("not exported" if r is None else self.error(r)))

    def string(self, name, *args, size=96):
        buf = ctypes.create_string_buffer(size)
        self.check(name, *args, buf, ctypes.c_uint(size))
        return buf.value.decode()

    def close(self):
        self.call("nvmlShutdown")


def read_node(library=None):
    n = Nvml(library)
    try:
        return _read(n)
    finally:
        n.close()


def _read(n):
    u = ctypes.c_uint()
    i = ctypes.c_int()
    node = {"driver_version": n.string("nvmlSystemGetDriverVersion", size=80)}
    n.check("nvmlSystemGetCudaDriverVersion", ctypes.byref(i))
    node["cuda_driver_version"] = i.value
    try:
        node["nvml_version"] = n.string("nvmlSystemGetNVMLVersion", size=80)
    except NvmlError:
        node["nvml_version"] = None
    n.check("nvmlDeviceGetCount_v2", ctypes.byref(u))
    handles, gpus = [], []
    for index in range(u.value):
        h = ctypes.c_void_p()
        n.check("nvmlDeviceGetHandleByIndex_v2", ctypes.c_uint(index), ctypes.byref(h))
        handles.append(h)
        pci, mem = PciInfo(), Memory()
        n.check("nvmlDeviceGetPciInfo_v3", h, ctypes.byref(pci))
        n.check("nvmlDeviceGetMemoryInfo", h, ctypes.byref(mem))
        major, minor = ctypes.c_int(), ctypes.c_int()
        n.check("nvmlDeviceGetCudaComputeCapability", h, ctypes.byref(major), ctypes.byref(minor))
        n.check("nvmlDeviceGetMinorNumber", h, ctypes.byref(u))
        g = {"index": index, "uuid": n.string("nvmlDeviceGetUUID", h), "name": n.string("nvmlDeviceGetName", h),
             "minor": u.value, "bus_id": pci.busId.decode(), "pci_device_id": pci.pciDeviceId,
             "pci_subsystem_id": pci.pciSubSystemId, "memory_mib": mem.total // (1 << 20),
             "compute_capability": f"{major.value}.{minor.value}", "brand": None, "architecture": None,
             "mig_capable": False, "mig_enabled": False}
        if n.call("nvmlDeviceGetBrand", h, ctypes.byref(u)) == SUCCESS:
            g["brand"] = BRANDS.get(u.value, f"brand {u.value}")
        if n.call("nvmlDeviceGetArchitecture", h, ctypes.byref(u)) == SUCCESS:
            g["architecture"] = ARCHITECTURES.get(u.value, f"architecture {u.value}")
        pending = ctypes.c_uint()
        if n.call("nvmlDeviceGetMigMode", h, ctypes.byref(u), ctypes.byref(pending)) == SUCCESS:
            g["mig_capable"], g["mig_enabled"] = True, u.value == DEVICE_MIG_ENABLE
        gpus.append(g)
    node["gpus"] = gpus

    levels = {}
    for a, ha in enumerate(handles):
        for b, hb in enumerate(handles):
            if a != b:
                r = n.call("nvmlDeviceGetTopologyCommonAncestor", ha, hb, ctypes.byref(u))
                levels[(a, b)] = u.value if r == SUCCESS else None
    node["levels"] = levels

    # Active links as go-gpuallocator walks them: NOT_SUPPORTED or INVALID_ARGUMENT on a link skips it.
    nvlinks = {}
    for a, h in enumerate(handles):
        links = []
        for link in range(NVLINK_MAX_LINKS):
            state = ctypes.c_uint()
            if n.call("nvmlDeviceGetNvLinkState", h, ctypes.c_uint(link), ctypes.byref(state)) != SUCCESS or \
                    state.value != FEATURE_ENABLED:
                continue
            pci = PciInfo()
            remote = None
            if n.call("nvmlDeviceGetNvLinkRemotePciInfo_v2", h, ctypes.c_uint(link), ctypes.byref(pci)) == SUCCESS:
                remote = pci.busId.decode()
            kind = None
            if n.call("nvmlDeviceGetNvLinkRemoteDeviceType", h, ctypes.c_uint(link), ctypes.byref(u)) == SUCCESS:
                kind = LINK_TYPES.get(u.value)
            links.append({"link": link, "remote": remote, "type": kind})
        nvlinks[a] = links
    node["nvlinks"] = nvlinks
    return node
