"""Plain HTTP "tool" endpoints an agent calls besides its LLM, served by the fake provider.

- ``GET /tools/weather?city=Paris`` -> ``{"city", "forecast", "temp_c"}``, the same for
  the same city every time;
- ``POST /tools/echo`` -> ``{"method", "json"|"text", "content_type"}`` echoing the body;
- ``GET /tools/status/NNN`` -> status NNN with a small JSON body (failures to record);
- ``GET /tools/headers`` -> the request's ``x-trace`` header sent back as ``x-trace``, byte
  for byte (header bytes that are not UTF-8 included), and its bytes in hex in the body.
"""

from __future__ import annotations

import json

from rewind.testing.fake_common import FakeRequest, JsonObject, JsonReply, stable_number

PREFIX = "/tools/"
FORECASTS = ("sunny", "partly cloudy", "overcast", "light rain", "windy", "clear skies")


def handle(request: FakeRequest) -> JsonReply:
    """Answer a request under ``/tools/``."""
    name = request.path[len(PREFIX) :]
    if name == "weather":
        return _weather(request)
    if name == "echo":
        return JsonReply(200, echo(request))
    if name == "headers":
        return _headers(request)
    if name.startswith("status/") and name[len("status/") :].isdigit():
        code = int(name[len("status/") :])
        return JsonReply(code, {"status": code, "message": "Fake tool status"})
    return JsonReply(404, {"error": f"No fake tool at {request.path}"})


def _headers(request: FakeRequest) -> JsonReply:
    # http.server reads header bytes as latin-1 and writes them back the same way.
    trace = request.headers.get("x-trace", "")
    hex_bytes = trace.encode("latin-1", "replace").hex()
    return JsonReply(200, {"x_trace_hex": hex_bytes}, headers=(("x-trace", trace),))


def _weather(request: FakeRequest) -> JsonReply:
    city = request.param("city")
    if not city:
        return JsonReply(400, {"error": "Missing query parameter: city"})
    return JsonReply(200, weather(city))


def weather(city: str) -> JsonObject:
    """A forecast that depends only on the city's name."""
    key = city.strip().lower()
    return {
        "city": city,
        "forecast": FORECASTS[stable_number(key, len(FORECASTS))],
        "temp_c": stable_number(key + "/temp", 30) - 2,
    }


def echo(request: FakeRequest) -> JsonObject:
    """The request's method, content type and body (as JSON when it parses)."""
    reply: JsonObject = {
        "method": request.method,
        "content_type": request.headers.get("content-type"),
    }
    try:
        reply["json"] = json.loads(request.body)
    except ValueError:
        reply["text"] = request.body.decode("utf-8", "replace")
    return reply
