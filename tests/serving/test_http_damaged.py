"""Over HTTP: a promoted version whose blob was damaged on disk is refused; the old version
keeps answering; /metrics and status() show the refusal."""

from __future__ import annotations

import json

import woodlot
from tests.serving._http_util import Client, metrics
from tests.serving._live_util import blob_file, damage, small_models, wait_for


def test_a_damaged_promoted_version_is_refused_and_the_old_one_keeps_serving(tmp_path):
    models, X_test = small_models(2)
    path = tmp_path / "models"
    store = woodlot.VersionStore(path)
    v1, v2 = store.save(models[0]), store.save(models[1])
    store.promote(v1)
    body = {"instances": X_test[:4].tolist()}
    want = {"predictions": models[0].predict(X_test[:4]).tolist()}
    with woodlot.serve(store, port=0, poll_seconds=0.05, block=False) as server:
        client = Client(server.url)
        assert metrics(client)["woodlot_refused_swaps_total"] == 0
        store.promote(v2)  # intact when promoted (the store verifies it) ...
        damage(blob_file(path, v2))  # ... damaged on disk before the server loads it
        assert wait_for(lambda: server.status().refused_swaps >= 1, 10)
        for _ in range(50):
            status, headers, data = client.post_json("/invocations", body)
            assert status == 200 and headers["x-woodlot-version"] == "v1"
            assert json.loads(data) == want
        m = metrics(client)
        assert m["woodlot_refused_swaps_total"] == 1 and m["woodlot_served_version"] == 1
        assert m["woodlot_swaps_total"] == 0
        st = server.status()
        assert (st.version, st.target, st.refused_swaps) == ("v1", "v2", 1)
        assert "refused v2" in st.last_error
        status, _, data = client.get("/version")
        assert json.loads(data)["version"] == 1
