"""The ainnoseg dashboard: `streamlit run app/dashboard.py` (or `make dashboard`).

Runs, launching jobs, self-training rounds and their pseudo-labels, Mosaic
samples, predictions and what a model computes at a clicked pixel; every page
only calls the `ainnoseg` library.
"""

import os

import streamlit as st

from ainnoseg import threads

# Jobs launched from here keep a core for the pages; predictions take what jobs leave.
threads.serve_interactively()
st.set_page_config(page_title="ainnoseg", page_icon=":material/grid_view:", layout="wide")

pages = [
    st.Page("runs.py", title="Runs", icon=":material/table_rows:", default=True),
    st.Page("launch.py", title="Launch", icon=":material/play_arrow:"),
    st.Page("rounds.py", title="Rounds", icon=":material/autorenew:"),
    st.Page("mosaic.py", title="Mosaic", icon=":material/dashboard:"),
    st.Page("predictions.py", title="Predictions", icon=":material/image_search:"),
    st.Page("inside.py", title="Inside", icon=":material/center_focus_strong:"),
    st.Page("label_issues.py", title="Label issues", icon=":material/report:"),
]
navigation = st.navigation(pages)
with st.sidebar:
    st.text_input("Runs folder", value=os.environ.get("AINNOSEG_RUNS", "runs"), key="runs_root",
                  help="where run directories are listed and new runs are written")
navigation.run()
