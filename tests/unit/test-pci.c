/* SPDX-License-Identifier: Apache-2.0 */
/* PCI bus id normalisation, sysfs NUMA/class parsing, MIG profile naming and the link score. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/stat.h>

#include "base/fileio.h"
#include "gpu/inventory.h"

static void test_bus_id_normalize(void **state)
{
        char out[32];

        /* NVML's form: 8-digit upper-case domain. */
        assert_int_equal(pci_bus_id_normalize("00000000:3B:00.0", out, sizeof(out)), 0);
        assert_string_equal(out, "0000:3b:00.0");
        /* NVML's legacy 4-digit form, and already normal input. */
        assert_int_equal(pci_bus_id_normalize("0000:DF:00.0", out, sizeof(out)), 0);
        assert_string_equal(out, "0000:df:00.0");
        assert_int_equal(pci_bus_id_normalize("0000:1b:00.1", out, sizeof(out)), 0);
        assert_string_equal(out, "0000:1b:00.1");
        /* A non-zero 16-bit domain keeps its digits; one beyond 16 bits keeps all 8 (as upstream). */
        assert_int_equal(pci_bus_id_normalize("00000002:41:00.0", out, sizeof(out)), 0);
        assert_string_equal(out, "0002:41:00.0");
        assert_int_equal(pci_bus_id_normalize("00010000:41:00.0", out, sizeof(out)), 0);
        assert_string_equal(out, "00010000:41:00.0");

        assert_int_equal(pci_bus_id_normalize("", out, sizeof(out)), -EINVAL);
        assert_int_equal(pci_bus_id_normalize("3b:00.0", out, sizeof(out)), -EINVAL);
        assert_int_equal(pci_bus_id_normalize("0000:3b:00", out, sizeof(out)), -EINVAL);
        assert_int_equal(pci_bus_id_normalize("0000:3b:00.0 ", out, sizeof(out)), -EINVAL);
        assert_int_equal(pci_bus_id_normalize("0000:3g:00.0", out, sizeof(out)), -EINVAL);
        assert_int_equal(pci_bus_id_normalize("000000000:3b:00.0", out, sizeof(out)), -EINVAL);
        assert_int_equal(pci_bus_id_normalize("0000:3b:00.8", out, sizeof(out)), -EINVAL);
        assert_int_equal(pci_bus_id_normalize(NULL, out, sizeof(out)), -EINVAL);
        /* Too small an output buffer is refused, not truncated. */
        assert_int_equal(pci_bus_id_normalize("0000:3b:00.0", out, 12), -ENOBUFS);
}

static char root[] = "/tmp/nvdp-test-pci-XXXXXX";

static void put(const char *bus, const char *attr, const char *content)
{
        char dir[256], path[300];
        snprintf(dir, sizeof(dir), "%s/sys/bus/pci/devices/%s", root, bus);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
        assert_int_equal(system(cmd), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, attr);
        assert_true(write_file_atomic(path, content, strlen(content), 0644) >= 0);
}

static void test_numa_and_class(void **state)
{
        assert_non_null(mkdtemp(root));
        put("0000:01:00.0", "numa_node", "1\n");
        put("0000:02:00.0", "numa_node", "-1\n");
        put("0000:03:00.0", "numa_node", "garbage\n");
        put("0000:04:00.0", "numa_node", "");
        put("0000:05:00.0", "numa_node", "12x\n");
        put("0000:01:00.0", "class", "0x030200\n");
        put("0000:02:00.0", "class", "0x030000\n");
        put("0000:03:00.0", "class", "nonsense\n");

        assert_int_equal(pci_read_numa_node(root, "0000:01:00.0"), 1);
        assert_int_equal(pci_read_numa_node(root, "0000:02:00.0"), -1); /* sysfs "no node" */
        assert_int_equal(pci_read_numa_node(root, "0000:03:00.0"), -1);
        assert_int_equal(pci_read_numa_node(root, "0000:04:00.0"), -1);
        assert_int_equal(pci_read_numa_node(root, "0000:05:00.0"), -1);
        assert_int_equal(pci_read_numa_node(root, "0000:99:00.0"), -1); /* no such device */

        assert_int_equal(pci_read_class(root, "0000:01:00.0"), 0x030200);
        assert_int_equal(pci_read_class(root, "0000:02:00.0"), 0x030000);
        assert_int_equal(pci_read_class(root, "0000:03:00.0"), 0);
        assert_int_equal(pci_read_class(root, "0000:99:00.0"), 0);

        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        assert_int_equal(system(cmd), 0);
}

static void test_mig_profile_name(void **state)
{
        const uint64_t a100_40 = 40960ULL << 20, h100_80 = 81559ULL << 20;
        char out[32];

        /* A100 40GB GPU instance profiles (memory as NVML reports it) */
        assert_int_equal(mig_profile_name(1, 1, 0, 4864, a100_40, out, sizeof(out)), 0);
        assert_string_equal(out, "1g.5gb");
        assert_int_equal(mig_profile_name(1, 1, 7, 4864, a100_40, out, sizeof(out)), 0);
        assert_string_equal(out, "1g.5gb+me");
        assert_int_equal(mig_profile_name(1, 1, 9, 9856, a100_40, out, sizeof(out)), 0);
        assert_string_equal(out, "1g.10gb");
        assert_int_equal(mig_profile_name(2, 2, 1, 9856, a100_40, out, sizeof(out)), 0);
        assert_string_equal(out, "2g.10gb");
        assert_int_equal(mig_profile_name(3, 3, 2, 19968, a100_40, out, sizeof(out)), 0);
        assert_string_equal(out, "3g.20gb");
        assert_int_equal(mig_profile_name(7, 7, 4, 40192, a100_40, out, sizeof(out)), 0);
        assert_string_equal(out, "7g.40gb");
        /* A compute instance smaller than its GPU instance */
        assert_int_equal(mig_profile_name(2, 1, 1, 9856, a100_40, out, sizeof(out)), 0);
        assert_string_equal(out, "1c.2g.10gb");
        /* H100 80GB: 81559 MiB rounds up to 80 GiB */
        assert_int_equal(mig_profile_name(1, 1, 0, 9856, h100_80, out, sizeof(out)), 0);
        assert_string_equal(out, "1g.10gb");
        assert_int_equal(mig_profile_name(1, 1, 9, 19968, h100_80, out, sizeof(out)), 0);
        assert_string_equal(out, "1g.20gb");
        assert_int_equal(mig_profile_name(7, 7, 4, 80896, h100_80, out, sizeof(out)), 0);
        assert_string_equal(out, "7g.80gb");
        assert_int_equal(mig_profile_name(1, 1, 15, 9856, h100_80, out, sizeof(out)), 0);
        assert_string_equal(out, "1g.10gb+me.all");
        assert_int_equal(mig_profile_name(1, 1, 13, 9856, h100_80, out, sizeof(out)), 0);
        assert_string_equal(out, "1g.10gb-me");
        assert_int_equal(mig_profile_name(1, 1, 10, 9856, h100_80, out, sizeof(out)), 0);
        assert_string_equal(out, "1g.10gb+gfx");

        /* H200 141GB, as a real driver (580.159.04) reports its profiles, and nvidia-smi names them. */
        const uint64_t h200 = 143771ULL << 20;
        assert_int_equal(mig_profile_name(1, 1, 0, 16384, h200, out, sizeof(out)), 0);
        assert_string_equal(out, "1g.18gb");
        assert_int_equal(mig_profile_name(1, 1, 7, 16384, h200, out, sizeof(out)), 0);
        assert_string_equal(out, "1g.18gb+me");
        assert_int_equal(mig_profile_name(1, 1, 9, 33280, h200, out, sizeof(out)), 0);
        assert_string_equal(out, "1g.35gb");
        assert_int_equal(mig_profile_name(2, 2, 1, 33280, h200, out, sizeof(out)), 0);
        assert_string_equal(out, "2g.35gb");
        assert_int_equal(mig_profile_name(3, 3, 2, 71424, h200, out, sizeof(out)), 0);
        assert_string_equal(out, "3g.71gb");
        assert_int_equal(mig_profile_name(4, 4, 3, 71424, h200, out, sizeof(out)), 0);
        assert_string_equal(out, "4g.71gb");
        assert_int_equal(mig_profile_name(7, 7, 4, 143360, h200, out, sizeof(out)), 0);
        assert_string_equal(out, "7g.141gb");

        assert_int_equal(mig_profile_name(0, 1, 0, 4864, a100_40, out, sizeof(out)), -EINVAL);
        assert_int_equal(mig_profile_name(1, 1, 0, 4864, 0, out, sizeof(out)), -EINVAL);
        assert_int_equal(mig_profile_name(1, 1, 0, 4864, a100_40, out, 4), -ENOBUFS);
}

static void test_link_score(void **state)
{
        struct gpu_link l = { .nvlinks = 18, .pcie_level = PCIE_LEVEL_SYSTEM };
        assert_int_equal(gpu_link_score(&l), 1800);
        l = (struct gpu_link){ .nvlinks = 0, .pcie_level = PCIE_LEVEL_INTERNAL };
        assert_int_equal(gpu_link_score(&l), 60);
        l.pcie_level = PCIE_LEVEL_SINGLE;
        assert_int_equal(gpu_link_score(&l), 50);
        l.pcie_level = PCIE_LEVEL_MULTIPLE;
        assert_int_equal(gpu_link_score(&l), 40);
        l.pcie_level = PCIE_LEVEL_HOSTBRIDGE;
        assert_int_equal(gpu_link_score(&l), 30);
        l.pcie_level = PCIE_LEVEL_NODE;
        assert_int_equal(gpu_link_score(&l), 20);
        l.pcie_level = PCIE_LEVEL_SYSTEM;
        assert_int_equal(gpu_link_score(&l), 10);
        l.pcie_level = PCIE_LEVEL_UNKNOWN;
        assert_int_equal(gpu_link_score(&l), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bus_id_normalize),
                cmocka_unit_test(test_numa_and_class),
                cmocka_unit_test(test_mig_profile_name),
                cmocka_unit_test(test_link_score),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
