"""`make deploy` with Scanner=GuardDuty builds and pushes no container image, checked against SAM's own code.

`sam build` and `sam deploy` ignore Conditions; filepipe/sam_images.py keeps the image functions the
parameters leave out away from both. The pinned SAM CLI's packaging runs here over the template (its image
resources only, with an ECR uploader that records instead of pushing).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from filepipe.sam_images import left_out_image_functions, main, mark_unbuilt, read_template
from filepipe.template import TEMPLATE_PATH
from gates import tool

CLAMAV_IMAGES = ["DefinitionsUpdateFunction", "ScanFunction"]

# What `sam deploy` does with each image function of a template: the uploader records what it would push.
PACKAGE = """
import json, sys
from unittest import mock
from samcli.lib.package.artifact_exporter import Template
from samcli.lib.package.ecr_uploader import ECRUploader
from samcli.lib.package.packageable_resources import ServerlessFunctionImageResource
from samcli.lib.package.s3_uploader import S3Uploader
from samcli.lib.package.uploaders import Uploaders

pushed = []
ecr = mock.create_autospec(ECRUploader, instance=True)
ecr.upload.side_effect = lambda image, function: pushed.append(function) or "1.dkr.ecr.r.amazonaws.com/x:y"
signer = mock.Mock()
signer.should_sign_package.return_value = False
uploaders = Uploaders(mock.create_autospec(S3Uploader, instance=True), ecr)
Template(sys.argv[1], sys.argv[2], uploaders, signer, [ServerlessFunctionImageResource]).export()
print(json.dumps(sorted(pushed)))
"""


def test_guardduty_leaves_out_clamavs_image_functions_and_clamav_none() -> None:
    template = read_template(TEMPLATE_PATH)
    assert left_out_image_functions(template, {"Scanner": "GuardDuty"}) == CLAMAV_IMAGES
    assert left_out_image_functions(template, {"Scanner": "ClamAV"}) == []
    with pytest.raises(KeyError, match="Scaner"):
        left_out_image_functions(template, {"Scaner": "ClamAV"})


def test_sam_build_is_told_to_skip_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exclude", str(TEMPLATE_PATH), "Scanner=GuardDuty"]) == 0
    assert capsys.readouterr().out.split() == [word for name in CLAMAV_IMAGES for word in ("--exclude", name)]
    assert main(["exclude", str(TEMPLATE_PATH), "Scanner=ClamAV"]) == 0
    assert capsys.readouterr().out.strip() == ""


def _pushed(template: Path) -> list[str]:
    result = subprocess.run(
        [str(tool("sam", "python")), "-c", PACKAGE, str(template), str(TEMPLATE_PATH.parent)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pushed: list[str] = json.loads(result.stdout.splitlines()[-1])
    return pushed


@pytest.mark.parametrize(("scanner", "pushed"), [("GuardDuty", []), ("ClamAV", CLAMAV_IMAGES)])
def test_sam_deploy_pushes_only_the_images_the_stack_runs(
    tmp_path: Path, scanner: str, pushed: list[str]
) -> None:
    # The built template as `make deploy` hands it to `sam deploy` (what `sam build` changes does not matter
    # here: it writes the ImageUri of the images it built, which are the ones kept).
    built = tmp_path / "template.yaml"
    built.write_text(TEMPLATE_PATH.read_text())
    assert main(["unbuilt", str(built), f"Scanner={scanner}"]) == 0

    assert _pushed(built) == pushed


def test_the_unbuilt_template_keeps_everything_else() -> None:
    template = read_template(TEMPLATE_PATH)
    changed = yaml.safe_load(yaml.safe_dump(template))
    mark_unbuilt(changed, CLAMAV_IMAGES)
    for name in CLAMAV_IMAGES:
        assert "Fn::Sub" in changed["Resources"][name]["Properties"].pop("ImageUri")
        template["Resources"][name]["Properties"].pop("ImageUri")
    assert changed == json.loads(json.dumps(template))
