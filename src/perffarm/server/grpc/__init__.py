"""The results server's gRPC services, served beside HTTP (`perffarm server --grpc-address`).

- ``perffarm.v1.Runs``: submit a run document (idempotent on its id, as over HTTP), list a
  user's results and all users' results;
- ``perffarm.v1.LoadTests``: one long-lived stream of load-test datapoint batches, each
  acknowledged;
- ``grpc.testing.ReportQpsScenarioService``: what gRPC's ``qps_json_driver
  --enable_rpc_reporter`` sends, stored as runs;
- ``grpc.health.v1.Health`` and server reflection.

Everything goes through the same code as HTTP: ``services/authn.py`` and ``permissions.py``
for credentials, ``services/ingest.py`` for runs, ``services/loadtests.py`` for datapoints,
``store/results.py`` for results, on the app's engine and event loop. See docs/grpc.md.
"""
