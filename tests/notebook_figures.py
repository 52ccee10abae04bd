"""The README's tutorial figures (assets/notebooks/), drawn by the notebooks
themselves at their own sizes:

    python tests/notebook_figures.py --out assets/notebooks [--only 05_boundaries_and_small_objects]
        [--set 02_inside_the_network MODEL='"camvid/ainnoseg_w18s"']

Each notebook runs from its first cell to its last (as tests/test_notebooks.py
runs it, at its own parameters rather than the CI sizes; `--set` adds a value
after the parameters cell, `--small` uses the CI sizes to try the script
quickly), and the figure of each cell named in FIGURES is written as a
256-colour PNG.
Not a test: pytest does not collect it.
"""

import argparse
import base64
import io
import os
import sys
import tempfile
from pathlib import Path

import nbclient
import nbformat
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_notebooks import NOTEBOOKS, ci_parameters, parameters_cell  # noqa: E402

# notebook -> [(a line of the cell that draws the figure, the figure's file)]
FIGURES = {
    "02_inside_the_network": [
        ('print(f"{model.meta.name} has no HRNet backbone")', "hrnet_branches.png"),
        ("present = [k for k in range(len(model.meta.class_names))", "ocr_soft_regions.png"),
    ],
    "03_augmentation": [('things = [dataset.class_names.index(name) for name in',
                         "mosaic_object_sizes.png")],
    "04_teacher_and_student": [('panels = [("pool image", image),', "pseudo_labels_by_round.png")],
    "05_boundaries_and_small_objects": [("figure, axes = plt.subplots(SHOW, len(models) + 2,",
                                         "models_where_they_disagree.png")],
}


def with_values(notebook, values):
    """`notebook` with a cell setting `values` ({name: Python source}) after its parameters."""
    if values:
        source = "\n".join(f"{name} = {value}" for name, value in values.items())
        index = notebook.cells.index(parameters_cell(notebook)) + 1
        notebook.cells.insert(index, nbformat.v4.new_code_cell(source))
    return notebook


def figure_of(notebook, marker):
    """The PNG bytes of the one figure the cell holding `marker` drew."""
    cells = [cell for cell in notebook.cells
             if cell.cell_type == "code" and marker in cell.source]
    if len(cells) != 1:
        raise SystemExit(f"{len(cells)} cells hold {marker!r}: update FIGURES")
    pictures = [output["data"]["image/png"] for output in cells[0].outputs
                if "image/png" in output.get("data", {})]
    if len(pictures) != 1:
        raise SystemExit(f"the cell holding {marker!r} drew {len(pictures)} figures, not one")
    return base64.b64decode(pictures[0])


def compact_png(png):
    """`png` flattened onto white and reduced to a 256-colour palette: a third
    of matplotlib's RGBA file, with no difference a reader can see."""
    figure = Image.open(io.BytesIO(png)).convert("RGBA")
    flat = Image.new("RGB", figure.size, "white")
    flat.paste(figure, mask=figure.getchannel("A"))
    buffer = io.BytesIO()
    flat.quantize(256).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def draw(name, values, out):
    notebook = with_values(nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4), values)
    client = nbclient.NotebookClient(notebook, timeout=7200, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    for marker, file_name in FIGURES[name]:
        (out / file_name).write_bytes(compact_png(figure_of(client.nb, marker)))
        print(f"wrote {out / file_name}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("assets/notebooks"))
    parser.add_argument("--only", nargs="+", choices=list(FIGURES), default=list(FIGURES))
    parser.add_argument("--set", nargs=2, action="append", default=[],
                        metavar=("NOTEBOOK", "NAME=VALUE"),
                        help="a parameter's value, as Python source, for one notebook")
    parser.add_argument("--small", action="store_true", help="the CI sizes (a quick try)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.pop("MPLBACKEND", None)  # the kernel would inherit Agg and draw nothing
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.only:
            values = ({key: repr(value) for key, value in
                       ci_parameters(name, Path(scratch)).items()} if args.small else {})
            values.update(dict(item.split("=", 1) for notebook, item in args.set
                               if notebook == name))
            draw(name, values, args.out)


if __name__ == "__main__":
    main()
