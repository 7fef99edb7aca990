"""Goal inference: `schedc profile` samples a real workload from /proc into a `Profile`
(`model.py`), which the rest of schedc consumes — a sandbox scenario of the same shape
(`scenario.py`), a first DSL draft (`draft.py`) and repository search by similar profiles
(`similarity.py`)."""
