"""The dashboard: server-rendered pages over the same query code as the JSON API."""
