"""AuxiliaryOutput and `ainnoseg eval --output`: an auxiliary output scored
as the final one."""

import json

import pytest
import torch
from torch import nn

import ainnoseg
from ainnoseg.checkpoints.files import save_checkpoint
from ainnoseg.cli import main
from ainnoseg.config import load_config
from ainnoseg.data import build_dataset, eval_transforms
from ainnoseg.engine.evaluate import evaluate
from ainnoseg.models.auxiliary_output import AuxiliaryOutput, output_names
from data_trees import stripes, write_image, write_mask
from test_evaluate import ReadsTheLabel, _label_tree

CLASSES = ["background", "cat", "dog"]


class PerfectAuxiliary(nn.Module):
    """A "model" whose "ocr" output reads the label and whose "out" says
    background everywhere."""

    num_classes = 4
    stride = 1
    loss_weights = {"out": 1.0, "ocr": 0.4}

    def __init__(self):
        super().__init__()
        self.reads_the_label = ReadsTheLabel(self.num_classes)

    def forward(self, images, output_size=None):
        perfect = self.reads_the_label(images)["out"]
        background = torch.zeros_like(perfect)
        background[:, 0] = 1.0
        return {"out": background, "ocr": perfect}


@pytest.mark.parametrize("name, outputs", [
    ("hrnetv2_w18s", ["out"]),
    ("ocrnet_hrnet_w18s", ["out", "ocr"]),
    ("ainnoseg_w18s", ["out", "ocr", "da"]),
    ("danet_r18", ["out", "pam", "cam"]),
])
def test_each_output_comes_back_as_out_from_the_plain_and_the_fast_model(name, outputs):
    torch.manual_seed(0)
    model = ainnoseg.build_model(name, num_classes=3).eval()
    assert output_names(model) == outputs
    images = torch.randn(1, 3, 64, 96)
    fast = ainnoseg.optimize_for_inference(model, amp="off")
    with torch.no_grad():
        expected = model(images)
        for output in outputs:
            for wrapped, reference in ((model, expected), (fast, None)):
                scored = AuxiliaryOutput(wrapped, output)
                assert not scored.training
                got = scored(images)
                assert list(got) == ["out"]
                reference = reference or wrapped(images)
                torch.testing.assert_close(got["out"], reference[output])


def test_an_unknown_output_names_the_outputs_there_are():
    model = ainnoseg.build_model("ocrnet_hrnet_w18s", num_classes=3).eval()
    with pytest.raises(ValueError, match="no output 'da'; it returns ocr, out"):
        AuxiliaryOutput(model, "da")(torch.zeros(1, 3, 64, 64))


def test_evaluate_scores_the_auxiliary_output_not_the_final_one(tmp_path):
    dataset = _label_tree(tmp_path, [(64, 96), (48, 80)])
    model = PerfectAuxiliary().eval()
    assert evaluate(AuxiliaryOutput(model, "ocr"), dataset)["mean_iou"] == pytest.approx(1.0)
    assert evaluate(model, dataset)["mean_iou"] < 0.5


def _pets(root):
    (root / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    for index in range(2):
        write_image(root / "images" / f"{index}.png", 64, 96, seed=index)
        write_mask(root / "masks" / f"{index}.png", stripes(64, 96, values=(0, 1, 2)))
    return root


def test_eval_output_scores_that_output_and_refuses_one_the_model_lacks(tmp_path, capsys):
    torch.manual_seed(0)
    model = ainnoseg.build_model("ainnoseg_w18s", num_classes=3).eval()
    checkpoint = tmp_path / "model.pt"
    config = load_config(None, ["model=ainnoseg_w18s"]).to_dict()
    save_checkpoint({"model": model.state_dict(), "config": config,
                     "class_names": CLASSES, "palette": [], "metrics": {}, "step": 0},
                    checkpoint)
    data = _pets(tmp_path / "pets")
    scores = {}
    for output in ("out", "da"):
        out = tmp_path / f"{output}.json"
        with pytest.raises(SystemExit) as done:
            main(["eval", str(checkpoint), str(data), "--split", "val", "--amp", "off",
                  "--output", output, "--json", str(out), "--quiet"])
        assert done.value.code == 0
        scores[output] = json.loads(out.read_text())["pixel_accuracy"]
    dataset = build_dataset(data, "val", transforms=eval_transforms())
    loaded = ainnoseg.load(str(checkpoint))
    expected = evaluate(AuxiliaryOutput(loaded, "da"), dataset, amp="off")
    assert scores["da"] == pytest.approx(expected["pixel_accuracy"])
    assert scores["da"] != scores["out"]

    with pytest.raises(SystemExit) as done:
        main(["eval", str(checkpoint), str(data), "--split", "val", "--output", "pam"])
    assert done.value.code == 2
    assert "--output pam: ainnoseg_w18s has the outputs out, ocr, da" in capsys.readouterr().err
