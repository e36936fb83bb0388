/* SPDX-License-Identifier: Apache-2.0 */
/* GFD's label values from names we do not control: the GPU's product name (from the driver) and the
 * machine's DMI product name (from firmware). Byte 0 is max_len for labels_sanitise, byte 1 splits the
 * rest into product name and machine type. Every value must be a valid Kubernetes label value: at most
 * 63 characters of [A-Za-z0-9-_.], beginning and ending with a letter or digit (or empty). */
#include <string.h>

#include "config/config.h"
#include "fuzz-common.h"
#include "labels/labels.h"
#include "test-plan-inventories.h"

static bool value_ok(const char *v, size_t max)
{
        size_t n = strlen(v);
        if (n > max)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = v[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if (!alnum && ((i == 0 || i == n - 1) || (c != '-' && c != '_' && c != '.')))
                        return false;
        }
        return true;
}

static config *cfg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 2)
                return 0;
        size_t max_len = data[0] % 80, split = MIN((size_t)data[1], size - 2);
        char product[96], machine[512], out[128];
        snprintf(product, sizeof product, "%.*s", (int)MIN(split, sizeof product - 1),
                 (const char *)data + 2);
        snprintf(machine, sizeof machine, "%.*s", (int)MIN(size - 2 - split, sizeof machine - 1),
                 (const char *)data + 2 + split);

        memset(out, 0x55, sizeof out);
        labels_sanitise(product, out, max_len);
        if (!value_ok(out, MIN(max_len, 63u))) {
                fprintf(stderr, "labels_sanitise(\"%s\", %zu) = \"%s\"\n", product, max_len, out);
                abort();
        }

        if (!cfg && config_new_default(&cfg) < 0)
                abort();
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        for (size_t i = 0; i < inv->n_gpus; i++)
                snprintf(inv->gpus[i].name, sizeof inv->gpus[i].name, "%s", product);
        _cleanup_(labels_freep) labels *l = NULL;
        _cleanup_free_ char *err = NULL;
        if (labels_build(inv, cfg, machine, LABELS_NO_TIMESTAMP, &l, &err) < 0)
                return 0;
        for (size_t i = 0; i < l->n; i++)
                if (!value_ok(l->items[i].value, 63)) {
                        fprintf(stderr, "label %s=\"%s\" is not a valid label value\n", l->items[i].key,
                                l->items[i].value);
                        abort();
                }
        return 0;
}
