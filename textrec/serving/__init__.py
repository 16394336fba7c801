"""HTTP serving in PaddleX serving's style (`--config.mode=serve`).

app.py      the ASGI app: protocol, validation, limits, metrics
batcher.py  dynamic batching of concurrent requests into one forward
client.py   a small Python client (standard library only)
server.py   `run(config)`: loads the model and serves it with uvicorn
"""
