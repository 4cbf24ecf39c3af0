"""The FastAPI peer of bench/bench_serve.py: a minimal FastAPI + uvicorn app around
scikit-learn's model, the way a team would write one by hand. It answers MLflow's
``dataframe_split`` JSON at ``POST /invocations`` with ``{"predictions": [...]}``.

    WOODLOT_BENCH_MODEL=model.joblib uvicorn serve_fastapi_app:app --port 8000
"""

from __future__ import annotations

import os

import joblib
import pandas as pd
from fastapi import FastAPI, Request

model = joblib.load(os.environ["WOODLOT_BENCH_MODEL"])
app = FastAPI()


@app.post("/invocations")
async def invocations(request: Request) -> dict:
    split = (await request.json())["dataframe_split"]
    frame = pd.DataFrame(split["data"], columns=split["columns"])
    return {"predictions": model.predict(frame).tolist()}


@app.get("/ping")
async def ping() -> str:
    return "ok"
