# SPDX-License-Identifier: Apache-2.0
"""scripts/check-layers (make lint): the real tree passes; an include that climbs or crosses the layers
of docs/design.md fails, naming the file and line."""
import os
import shutil
import subprocess

from conftest import REPO

SCRIPT = os.path.join(REPO, "scripts", "check-layers")


def run(src):
    return subprocess.run([SCRIPT, str(src)], capture_output=True, text=True, timeout=30)


def test_the_tree_follows_the_layers():
    p = run(os.path.join(REPO, "src"))
    assert p.returncode == 0, p.stderr


def test_an_include_that_climbs_or_crosses_fails(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(os.path.join(REPO, "src"), src)
    with open(src / "plugin" / "prefer.c", "a") as f:
        f.write('#include "daemon/daemon.h"\n')
    with open(src / "labels" / "labels.c", "a") as f:
        f.write('#include "doctor/doctor.h"\n')
    with open(src / "plugin" / "endpoint.c", "a") as f:
        f.write('#include "deviceplugin.pb-c.h"\n')
    p = run(src)
    assert p.returncode == 1
    lines = sorted(p.stderr.splitlines())
    assert len(lines) == 4, p.stderr
    assert "check-layers: 3 includes against the layers" in lines
    assert any(l.startswith("plugin/prefer.c:") and "daemon/daemon.h: up the layers" in l for l in lines)
    assert any(l.startswith("labels/labels.c:") and "doctor/doctor.h: sideways" in l for l in lines)
    assert any(l.startswith("plugin/endpoint.c:") and "only plugin/kubelet-wire.c may" in l for l in lines)


def test_a_new_room_must_be_placed(tmp_path):
    src = tmp_path / "src"
    (src / "widgets").mkdir(parents=True)
    (src / "widgets" / "w.c").write_text('#include "base/macro.h"\n')
    p = run(src)
    assert p.returncode == 1
    assert "room widgets/ is not in the layer list" in p.stderr
