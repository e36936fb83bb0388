/* SPDX-License-Identifier: Apache-2.0 */
#include "doctor/doctor.h"

int doctor_run(const struct doctor_options *o, doctor_report **ret)
{
        _cleanup_(doctor_report_freep) doctor_report *r = doctor_report_new();
        if (!r)
                return -ENOMEM;
        int k;
        if ((k = doctor_check_driver(o, r)) < 0 || (k = doctor_check_toolkit(o, r)) < 0 ||
            (k = doctor_check_containerd(o, r)) < 0 || (k = doctor_check_kubelet(o, r)) < 0 ||
            (k = doctor_check_mps(o, r)) < 0 || (k = doctor_check_cluster(o, r)) < 0)
                return k;
        *ret = TAKE_PTR(r);
        return 0;
}
