"""The Label issues page judges the first images of a split on request and
shows them worst first, with the suspected pixels of the chosen one."""

import pytest

pytest.importorskip("streamlit",
                    reason="the dashboard tests need streamlit: pip install -e .[test]")

from test_dashboard import open_app, rerun, runs_root, texts  # noqa: E402, F401


def image_captions(app):
    return " ".join(image.caption for element in app.get("image") for image in element.proto.imgs)


def test_the_label_issues_page_ranks_images_and_shows_the_chosen_one(runs_root):
    app = open_app("label_issues.py")
    assert not app.dataframe  # nothing judged before the button
    app.slider(key="issues_limit").set_value(3)
    rerun(app)
    app.button(key="issues_go").click()
    rerun(app)
    table = app.dataframe[0].value
    assert len(table) == 3
    assert list(table["score"]) == sorted(table["score"])  # worst first
    assert "of the suspected pixels lie within the Boundary IoU band" in texts(app.caption)
    swaps = [m.value for m in app.markdown if " labelled " in m.value]
    assert swaps and "% of" in swaps[0]
    assert table["name"][0] in image_captions(app)
    app.number_input(key="issues_rank").set_value(3)
    rerun(app)
    third = image_captions(app)
    assert table["name"][2] in third and "suspected pixels (magenta)" in third


def test_a_split_of_another_dataset_is_a_message_not_a_traceback(runs_root):
    app = open_app("label_issues.py")
    app.selectbox(key="issues_data").set_value("another folder...")
    rerun(app)
    app.text_input(key="issues_data_folder").input("/no/such/folder")
    rerun(app)
    assert app.error and "/no/such/folder" in texts(app.error)


def test_once_judged_the_button_goes(runs_root):
    app = open_app("label_issues.py")
    app.slider(key="issues_limit").set_value(2)
    rerun(app)
    app.button(key="issues_go").click()
    rerun(app)
    assert not [button for button in app.button if button.key == "issues_go"]
    assert len(app.dataframe[0].value) == 2
