/* SPDX-License-Identifier: Apache-2.0 */
/* The plugin library as the daemon drives it: plugin_new, the health view and the observer. No kubelet:
 * the endpoints serve in a temporary directory without registering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include <sys/stat.h>

#include "base/log.h"
#include "base/strv.h"
#include "plugin/plugin.h"
#include "test-plan-inventories.h"

struct seen {
        unsigned plan_changes;
        size_t old_resources, new_resources; /* of the last change; SIZE_MAX: old was NULL */
        char first_new[64];
};

static void on_plan_changed(const plan *old_plan, const plan *new_plan, void *userdata)
{
        struct seen *s = userdata;
        s->plan_changes++;
        s->old_resources = old_plan ? old_plan->n_resources : SIZE_MAX;
        s->new_resources = new_plan->n_resources;
        snprintf(s->first_new, sizeof s->first_new, "%s", new_plan->resources[0].name);
}

static config *shared_config(unsigned replicas)
{
        config *c;
        assert_int_equal(config_new_default(&c), 0);
        c->sharing.strategy = SHARING_TIME_SLICING;
        c->sharing.resources = new0(struct replicated_resource, 1);
        c->sharing.resources[0] = (struct replicated_resource){
                .name = strdup("nvidia.com/gpu"),
                .rename = strdup("nvidia.com/gpu.shared"),
                .replicas = replicas,
                .devices_all = true,
        };
        c->sharing.n_resources = 1;
        return c;
}

static void test_observer_sees_every_plan(void **state)
{
        char dir[] = "/tmp/nvdp-test-plugin-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(config_freep) config *c = NULL, *shared = shared_config(2), *bad = shared_config(2);
        assert_int_equal(config_new_default(&c), 0);
        /* sharing devices naming no GPU: the plan cannot be built */
        assert_int_equal(strv_extend(&bad->sharing.resources[0].devices_list, "GPU-nope"), 0);
        bad->sharing.resources[0].devices_all = false;
        _cleanup_(loop_freep) loop *l = NULL;
        assert_int_equal(loop_new(&l), 0);

        struct seen seen = {};
        struct plugin_observer o = { .on_plan_changed = on_plan_changed, .userdata = &seen };
        char *none[] = { NULL };
        struct plugin_options po = { .socket_dir = dir, .control_devices = none, .observer = &o };
        _cleanup_(plugin_freep) plugin *p = NULL;
        assert_int_equal(plugin_new(l, c, inv, &po, &p), 0);
        assert_null(plugin_plan(p));
        assert_false(plugin_registers(p));

        /* start: one change from no plan to the whole GPUs; the socket is there */
        assert_int_equal(plugin_start(p), 0);
        assert_int_equal(seen.plan_changes, 1);
        assert_int_equal(seen.old_resources, SIZE_MAX);
        assert_int_equal(seen.new_resources, 1);
        assert_string_equal(seen.first_new, "nvidia.com/gpu");
        struct stat st;
        _cleanup_free_ char *sock = NULL;
        assert_true(asprintf(&sock, "%s/nvidia-gpu.sock", dir) > 0);
        assert_int_equal(stat(sock, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_false(plugin_resource_registered(p, 0));

        /* a reload to shared GPUs: the observer gets the old and the new plan */
        assert_int_equal(plugin_reload(p, shared, NULL), 0);
        assert_int_equal(seen.plan_changes, 2);
        assert_int_equal(seen.old_resources, 1);
        assert_string_equal(seen.first_new, "nvidia.com/gpu.shared");
        assert_int_equal(plugin_plan(p)->resources[0].n_devices, 16);

        /* a reload that cannot build a plan changes nothing and tells nobody */
        assert_true(plugin_reload(p, bad, NULL) < 0);
        assert_int_equal(seen.plan_changes, 2);
        assert_string_equal(plugin_plan(p)->resources[0].name, "nvidia.com/gpu.shared");

        p = plugin_free(p);
        rmdir(dir);
}

static void test_health_view(void **state)
{
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(config_freep) config *c = NULL;
        assert_int_equal(config_new_default(&c), 0);
        _cleanup_(loop_freep) loop *l = NULL;
        assert_int_equal(loop_new(&l), 0);
        char *none[] = { NULL };
        struct plugin_options po = { .socket_dir = "/nonexistent", .control_devices = none };
        _cleanup_(plugin_freep) plugin *p = NULL;
        assert_int_equal(plugin_new(l, c, inv, &po, &p), 0);
        struct plan_device d = { .gpu = 3, .mig = -1 };

        /* no tracker: health checks off, every device healthy */
        assert_true(plugin_device_healthy(p, &d));

        /* the tracker is read where it is, not copied: a change shows at once */
        struct health_rules rules = {};
        _cleanup_(health_tracker_freep) health_tracker *t = NULL;
        assert_int_equal(health_tracker_new(inv, &rules, &t), 0);
        plugin_set_health(p, t);
        assert_true(plugin_device_healthy(p, &d));
        health_tracker_unit(t, 3, -1)->healthy = false;
        assert_false(plugin_device_healthy(p, &d));
        d.gpu = 2;
        assert_true(plugin_device_healthy(p, &d));
        plugin_set_health(p, NULL);
        d.gpu = 3;
        assert_true(plugin_device_healthy(p, &d));
}

static bool mps_ready_flag;

static bool gate_ready(const struct plan_resource *r, void *userdata)
{
        return r->sharing != SHARING_MPS || mps_ready_flag;
}

static bool is_socket(const char *dir, const char *name)
{
        _cleanup_free_ char *path = NULL;
        assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
        struct stat st;
        return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* GPUs 0 and 1 shared with MPS as nvidia.com/gpu.mps, the other six whole. */
static config *mps_config(void)
{
        config *c = shared_config(4);
        c->sharing.strategy = SHARING_MPS;
        c->sharing.resources[0].devices_all = false;
        assert_int_equal(strv_extend(&c->sharing.resources[0].devices_list, "0"), 0);
        assert_int_equal(strv_extend(&c->sharing.resources[0].devices_list, "1"), 0);
        free(c->sharing.resources[0].rename);
        c->sharing.resources[0].rename = strdup("nvidia.com/gpu.mps");
        return c;
}

static void test_gate_holds_a_resource_back_until_ready(void **state)
{
        char dir[] = "/tmp/nvdp-test-plugin-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_(fixture_inventory_freep) inventory *inv = fixture_h100x8();
        _cleanup_(config_freep) config *c = mps_config();
        _cleanup_(loop_freep) loop *l = NULL;
        assert_int_equal(loop_new(&l), 0);
        char *none[] = { NULL };
        struct plugin_gate gate = { gate_ready, NULL };
        struct plugin_options po = { .socket_dir = dir, .control_devices = none, .gate = &gate };
        _cleanup_(plugin_freep) plugin *p = NULL;
        assert_int_equal(plugin_new(l, c, inv, &po, &p), 0);

        /* not ready: the whole GPUs are served, the MPS resource is held back (no socket) */
        mps_ready_flag = false;
        assert_int_equal(plugin_start(p), 0);
        const plan *pl = plugin_plan(p);
        assert_int_equal(pl->n_resources, 2);
        assert_string_equal(pl->resources[0].name, "nvidia.com/gpu");
        assert_int_equal(pl->resources[0].n_devices, 6);
        assert_string_equal(pl->resources[1].name, "nvidia.com/gpu.mps");
        assert_int_equal(pl->resources[1].n_devices, 8);
        assert_true(is_socket(dir, "nvidia-gpu.sock"));
        assert_false(is_socket(dir, "nvidia-gpu.mps.sock"));
        assert_false(plugin_resource_held(p, 0));
        assert_true(plugin_resource_held(p, 1));
        assert_false(plugin_resource_serving(p, 1));

        /* nothing changed: asking again starts nothing */
        plugin_gate_changed(p);
        assert_false(is_socket(dir, "nvidia-gpu.mps.sock"));

        /* ready: it starts */
        mps_ready_flag = true;
        plugin_gate_changed(p);
        assert_true(is_socket(dir, "nvidia-gpu.mps.sock"));
        assert_false(plugin_resource_held(p, 1));
        assert_true(plugin_resource_serving(p, 1));

        /* not ready again: it stays served (its devices are listed Unhealthy), not held back */
        mps_ready_flag = false;
        plugin_gate_changed(p);
        assert_true(is_socket(dir, "nvidia-gpu.mps.sock"));
        assert_false(plugin_resource_held(p, 1));

        p = plugin_free(p);
        assert_false(is_socket(dir, "nvidia-gpu.sock"));
        assert_false(is_socket(dir, "nvidia-gpu.mps.sock"));
        rmdir(dir);
}

int main(void)
{
        log_set_max_level(LOG_ERR - 1); /* the failed reload is logged on purpose */
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_observer_sees_every_plan),
                cmocka_unit_test(test_health_view),
                cmocka_unit_test(test_gate_holds_a_resource_back_until_ready),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
