"""Templates, scenarios and image recipes are found through the package, in a clone as in a wheel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dicomtls import resources

ROOT = Path(__file__).resolve().parents[2]


def test_a_clone_reads_the_top_level_templates_scenarios_and_images_themselves() -> None:
    # src/dicomtls/_data/ links to them: an edit to templates/ is what the next run renders.
    assert resources.data_dir("templates").resolve() == ROOT / "templates"
    assert resources.SCENARIOS.resolve() == ROOT / "scenarios"
    assert resources.IMAGES.resolve() == ROOT / "images"
    assert (resources.SCENARIOS / "manifests").is_dir()
    assert (resources.IMAGES / "envoy" / "Dockerfile").is_file()


def test_dicomtls_templates_points_rendering_at_a_users_own_copy(tmp_path: Path) -> None:
    (tmp_path / "orthanc").mkdir()
    (tmp_path / "orthanc" / "orthanc.json.j2").write_text('{"Name": "{{ name }}, adapted"}\n')
    code = "from dicomtls.render import render; print(render('orthanc/orthanc.json.j2', name='mine'))"
    env = {**os.environ, "DICOMTLS_TEMPLATES": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '{"Name": "mine, adapted"}'
