"""The bare Flask app the benchmark compares CertDesk with: one route answering "hi"."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hi():
    return "hi"
