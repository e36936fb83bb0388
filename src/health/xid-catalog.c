/* SPDX-License-Identifier: Apache-2.0 */
/* NVIDIA's XID catalog as data.
 *
 * Source: "Analyzing Xid Errors with the Xid Catalog", docs.nvidia.com/deploy/xid-errors/
 * analyzing-xid-catalog.html (the catalog for Ampere and newer GPUs), column "Resolution Bucket
 * (Immediate Action)". The bucket is copied as written there; the class is how nvdp acts on it:
 *
 *   IGNORE, RESTART_APP          -> the GPU is fine; the application (if any) restarts.   not fatal
 *   WORKFLOW_XID_45              -> preemptive cleanup that follows another XID: the other
 *                                   XID decides (the catalog's investigatory action says
 *                                   "IGNORE (follow other Xid)").                           not fatal
 *   RESET_GPU                    -> the GPU needs a reset.                                  fatal
 *   RESTART_BM, RESTART_VM       -> the node needs a reboot.                                fatal
 *   CONTACT_SUPPORT, WORKFLOW_XID_48 (double-bit ECC: "a GPU reset or node reboot is needed"),
 *   WORKFLOW_NVLINK_ERR (XID 74: same words), WORKFLOW_NVLINK5_ERR (144-150: the bucket depends on a
 *   sub-code that NVML's event does not carry; many sub-codes are RESET_GPU), XID_154 (the driver
 *   announces a changed recovery action, which the event does not carry), CHECK_MECHANICALS,
 *   UPDATE_SWFW, CHECK_UVM      -> hardware or firmware needs a person.                   fatal
 *
 * XIDs the catalog marks "Unused" on Ampere and newer (bucket CONTACT_SUPPORT) are left out except
 * those still seen from older GPUs (56, 57, 58, 61, 65): they fall to the default for unknown XIDs,
 * which is the same. Unknown XIDs (not in this table, e.g. from a newer driver) are fatal: upstream
 * treats every XID outside its ignore list that way, a new XID number is more often a hardware or
 * driver fault than an application one, and recovery (quiet period + clean re-probe) bounds the cost
 * of being wrong. */
#include "health/health.h"

#define APP   XID_CLASS_APPLICATION
#define IGN   XID_CLASS_IGNORE
#define RESET XID_CLASS_RESET_GPU
#define BOOT  XID_CLASS_REBOOT
#define HW    XID_CLASS_HARDWARE

/* Sorted by XID (xid_catalog_lookup bisects). */
static const struct xid_info catalog[] = {
        { 8, APP, "RESTART_APP", "GPU stopped processing" },
        { 11, APP, "RESTART_APP", "Invalid or corrupted push buffer stream" },
        { 13, APP, "RESTART_APP", "Graphics Engine Exception" },
        { 14, IGN, "IGNORE", "Fake or injected error" },
        { 25, APP, "RESTART_APP", "Invalid or illegal push buffer stream" },
        { 31, APP, "RESTART_APP", "GPU memory page fault" },
        { 32, APP, "RESTART_APP", "Invalid or corrupted push buffer stream" },
        { 37, IGN, "IGNORE", "Driver firmware error" },
        { 38, IGN, "IGNORE", "Driver firmware error" },
        { 39, APP, "RESTART_APP", "Copy Engine Exception" },
        { 40, APP, "RESTART_APP", "Copy Engine Exception" },
        { 41, APP, "RESTART_APP", "Copy Engine Exception" },
        { 43, IGN, "IGNORE", "GPU stopped processing" },
        { 44, IGN, "IGNORE", "Graphics Engine fault during context switch" },
        { 45, APP, "WORKFLOW_XID_45", "Preemptive cleanup, due to previous errors" },
        { 46, RESET, "RESET_GPU", "GPU stopped processing" },
        { 48, HW, "WORKFLOW_XID_48", "Double Bit ECC Error" },
        { 54, HW, "CHECK_MECHANICALS", "Auxiliary power is not connected to the GPU board" },
        { 56, HW, "CONTACT_SUPPORT", "Display engine error (unused on Ampere and newer)" },
        { 57, HW, "CONTACT_SUPPORT",
          "Error programming video memory interface (unused on Ampere and newer)" },
        { 58, HW, "CONTACT_SUPPORT",
          "Unstable video memory interface detected (unused on Ampere and newer)" },
        { 60, APP, "RESTART_APP", "Video processor exception" },
        { 61, HW, "CONTACT_SUPPORT",
          "Internal micro-controller breakpoint/warning (unused on Ampere and newer)" },
        { 62, RESET, "RESET_GPU", "Internal micro-controller halt" },
        { 63, IGN, "IGNORE", "GPU memory remapping event" },
        { 64, RESET, "RESET_GPU", "GPU memory remapping failure" },
        { 65, HW, "CONTACT_SUPPORT", "Video processor exception (unused on Ampere and newer)" },
        { 66, IGN, "IGNORE", "Illegal access by driver" },
        { 67, IGN, "IGNORE", "Illegal access by driver" },
        { 68, APP, "RESTART_APP", "NVDEC0 Exception" },
        { 69, APP, "RESTART_APP", "Graphics Engine class error" },
        { 70, APP, "RESTART_APP", "CE3: Unknown Error" },
        { 71, APP, "RESTART_APP", "CE4: Unknown Error" },
        { 72, APP, "RESTART_APP", "CE5: Unknown Error" },
        { 74, HW, "WORKFLOW_NVLINK_ERR", "NVLINK Error" },
        { 75, APP, "RESTART_APP", "CE6: Unknown Error" },
        { 76, APP, "RESTART_APP", "CE7: Unknown Error" },
        { 77, APP, "RESTART_APP", "CE8: Unknown Error" },
        { 78, HW, "UPDATE_SWFW", "vGPU Start Error" },
        { 79, BOOT, "RESTART_BM", "GPU has fallen off the bus" },
        { 80, APP, "RESTART_APP", "Corrupted data sent to GPU" },
        { 82, APP, "RESTART_APP", "NVJPG0 Error" },
        { 83, APP, "RESTART_APP", "NVDEC1 Error" },
        { 84, APP, "RESTART_APP", "NVDEC2 Error" },
        { 85, APP, "RESTART_APP", "CE9: Unknown Error" },
        { 86, APP, "RESTART_APP", "OFA Exception" },
        { 88, APP, "RESTART_APP", "NVDEC3 Error" },
        { 89, APP, "RESTART_APP", "NVDEC4 Error" },
        { 92, IGN, "IGNORE", "High single-bit ECC error rate" },
        { 93, IGN, "IGNORE", "Non-fatal violation of provisioned InfoROM wear limit" },
        { 94, APP, "RESTART_APP", "Contained memory error" },
        { 95, RESET, "RESET_GPU", "Uncontained memory error" },
        { 96, APP, "RESTART_APP", "NVDEC5 Error" },
        { 97, APP, "RESTART_APP", "NVDEC6 Error" },
        { 98, APP, "RESTART_APP", "NVDEC7 Error" },
        { 99, APP, "RESTART_APP", "NVJPG1 Error" },
        { 100, APP, "RESTART_APP", "NVJPG2 Error" },
        { 101, APP, "RESTART_APP", "NVJPG3 Error" },
        { 102, APP, "RESTART_APP", "NVJPG4 Error" },
        { 103, APP, "RESTART_APP", "NVJPG5 Error" },
        { 104, APP, "RESTART_APP", "NVJPG6 Error" },
        { 105, APP, "RESTART_APP", "NVJPG7 Error" },
        { 106, IGN, "IGNORE", "SMBPBI Test Message" },
        { 107, IGN, "IGNORE", "SMBPBI Test Message Silent" },
        { 108, IGN, "IGNORE", "NVLink remote translation error (unused)" },
        { 109, RESET, "RESET_GPU", "Context Switch Timeout Error" },
        { 110, RESET, "RESET_GPU", "Security Fault Error" },
        { 119, RESET, "RESET_GPU", "GSP RPC Timeout" },
        { 120, RESET, "RESET_GPU", "GSP Error" },
        { 121, IGN, "IGNORE", "C2C Error (corrected)" },
        { 126, APP, "RESTART_APP", "CE10: Unknown Error" },
        { 127, APP, "RESTART_APP", "CE11: Unknown Error" },
        { 128, APP, "RESTART_APP", "CE12: Unknown Error" },
        { 129, APP, "RESTART_APP", "CE13: Unknown Error" },
        { 130, APP, "RESTART_APP", "CE14: Unknown Error" },
        { 131, APP, "RESTART_APP", "CE15: Unknown Error" },
        { 132, APP, "RESTART_APP", "CE16: Unknown Error" },
        { 133, APP, "RESTART_APP", "CE17: Unknown Error" },
        { 134, APP, "RESTART_APP", "CE18: Unknown Error" },
        { 135, APP, "RESTART_APP", "CE19: Unknown Error" },
        { 136, RESET, "RESET_GPU", "Link Training Failed" },
        { 137, IGN, "IGNORE", "NVLink Privilege Error" },
        { 139, APP, "RESTART_APP", "OFA1 Error" },
        { 140, RESET, "RESET_GPU", "ECC Unrecovered Error" },
        { 141, IGN, "IGNORE", "CUDA Fast Path Error" },
        { 142, HW, "CONTACT_SUPPORT", "NVENC3 Error" },
        { 143, RESET, "RESET_GPU", "GPU Initialization Error" },
        { 144, HW, "WORKFLOW_NVLINK5_ERR", "NVLINK: SAW Error" },
        { 145, HW, "WORKFLOW_NVLINK5_ERR", "NVLINK: RLW Error" },
        { 146, HW, "WORKFLOW_NVLINK5_ERR", "NVLINK: TLW Error" },
        { 147, HW, "WORKFLOW_NVLINK5_ERR", "NVLINK: TREX Error" },
        { 148, HW, "WORKFLOW_NVLINK5_ERR", "NVLINK: NVLPW_CTRL Error" },
        { 149, HW, "WORKFLOW_NVLINK5_ERR", "NVLINK: NETIR Error" },
        { 150, HW, "WORKFLOW_NVLINK5_ERR", "NVLINK: MSE Error" },
        { 151, BOOT, "RESTART_VM", "Key rotation Error" },
        { 152, IGN, "IGNORE", "DLA SMMU Error" },
        { 153, IGN, "IGNORE", "DLA timeout Error" },
        { 154, HW, "XID_154", "GPU Recovery Action Changed" },
        { 155, RESET, "RESET_GPU", "NVLINK: SW Defined Error" },
        { 156, RESET, "RESET_GPU", "Resource Retirement Event" },
        { 157, IGN, "IGNORE", "Resource Retirement Failure" },
        { 158, RESET, "RESET_GPU", "GPU Fatal Timeout" },
        { 159, HW, "CHECK_UVM", "CHI Non-Data Error" },
        { 160, IGN, "IGNORE", "Channel Retirement Event" },
        { 161, IGN, "IGNORE", "Channel Retirement Failure" },
};

const struct xid_info *xid_catalog_lookup(uint64_t xid)
{
        size_t lo = 0, hi = ELEMENTSOF(catalog);
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (catalog[mid].xid == xid)
                        return &catalog[mid];
                if (catalog[mid].xid < xid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

enum xid_class xid_catalog_class(uint64_t xid)
{
        const struct xid_info *i = xid_catalog_lookup(xid);
        return i ? i->cls : XID_CLASS_UNKNOWN;
}

bool xid_class_fatal(enum xid_class c)
{
        return c != XID_CLASS_IGNORE && c != XID_CLASS_APPLICATION;
}

static const char *const class_names[XID_CLASS_MAX_] = {
        [XID_CLASS_IGNORE] = "ignore",       [XID_CLASS_APPLICATION] = "application",
        [XID_CLASS_RESET_GPU] = "reset-gpu", [XID_CLASS_REBOOT] = "reboot",
        [XID_CLASS_HARDWARE] = "hardware",   [XID_CLASS_UNKNOWN] = "unknown",
};

const char *xid_class_to_string(enum xid_class c)
{
        return (unsigned)c < XID_CLASS_MAX_ ? class_names[c] : "unknown";
}
