#!/usr/bin/python3
"""Render conversations with DeepSeek-V3.2's own encoder and write the golden rows test_chat checks
ds_chat_render's DS_CHAT_DEEPSEEK3_2 against (see README.md).

usage: make_golden_v32.py ENCODING_DIR    (the folder holding DeepSeek's encoding_dsv32.py)

DeepSeek-V3.2 ships no Jinja chat template: its Hugging Face repository has encoding/
encoding_dsv32.py, whose encode_messages(messages, thinking_mode) is the format's definition. That
file is not part of this repository; this script imports it from ENCODING_DIR and writes
deepseek-v3.2.jsonl next to itself. It also renders every row through llama.cpp's Jinja
rendition of the format (llama.cpp-deepseek-v3.2.jinja) and counts the rows that come out
different.

A row is {"messages", "add_generation_prompt", "thinking", "tools", "text"} in the form of the
other .jsonl files; "tools" is the JSON text of an OpenAI-style tool list or null. The mapping to
the encoder's input is the one ds_chat_render uses (README.md):
  - an assistant's content "R</think>A" is reasoning_content R (a leading <think> dropped) and
    content A; without </think> it is all content;
  - the tools go on the first system message, or on an empty system message put first;
  - thinking true is thinking_mode "thinking", false "chat"; drop_thinking stays true;
  - the encoder has no add_generation_prompt: both values give the same text.
"text" is null where the encoder raises, and where it would write Python's "None" for a missing
user, developer or tool content or tool-call name (ds_chat_render refuses those instead)."""
import json
import os
import sys

from make_golden import BOS, EOS, call, environment

HERE = os.path.dirname(os.path.abspath(__file__))

WEATHER_TOOL = json.dumps([{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city, now.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "days": {"type": "integer"}},
                   "required": ["city"]}}}])
# compact, with escapes, floats and a non-function tool: the encoder re-serialises all of it
ODD_TOOLS = ('[{"type":"function","function":{"name":"calc","description":"caf\\u00e9 \\"math\\"'
             ' \\ud83d\\ude00\\n<tab>\\t","parameters":{"type":"object","properties":{"x":'
             '{"type":"number","default":1.50,"max":1e5,"min":-0.0}}},"strict":true}},'
             '{"type":"retrieval","function":{"name":"kb","parameters":{}}}]')


def u(c):
    return {"role": "user", "content": c}


def a(c, *calls):
    m = {"role": "assistant", "content": c}
    if calls:
        m["tool_calls"] = list(calls)
    return m


def s(c):
    return {"role": "system", "content": c}


def t(c):
    return {"role": "tool", "content": c}


weather = call("get_weather", '{"city": "Paris"}')
weather2 = call("get_weather", '{"city":"Rome","days":3}')
# every kind of JSON value, spelled as Python would not write it
mixed = call("mix", '{"s": "a \\"q\\" \\u00e9\\n", "i": -0, "big": 123456789012345678901234567890,'
                    ' "f": [1.0, 2.50, 1e5, 1E-7, 0.1, 1e16, 1e15, 123456789.123456789, 1e400,'
                    ' -1e-400, 5e-324, 1.7976931348623157e308], "b": [true, false, null],'
                    ' "o": {"k": {"deep": []}, "e": {}}, "u": "\\ud83d\\ude00\\/\\b\\f\\r\\t\\u0001",'
                    ' "n": NaN, "inf": -Infinity}')
dup = call("dup", '{"a": 1, "b": 2, "a": "last", "\\u0061": [3]}')
none_args = call("ping", '{}')


def conversations():
    """(messages, tools) pairs: the format's cases, its quirks and its errors."""
    return [
        # the README's example: earlier reasoning dropped, the last turn opened
        ([u("hello"), a("thinking...</think>Hello! I am DeepSeek."), u("1+1=?")], None),
        ([s("You are a helpful assistant."), u("Hi")], None),
        ([u("Hi")], None),
        ([], None),
        ([s(None), u("Hi")], None),
        # a reasoning turn after the last user: rendered in thinking mode only
        ([u("2+2?"), a("<think>2+2 is 4.</think>4.")], None),
        ([u("2+2?"), a("4.")], None),  # thinking mode needs the reasoning: the encoder refuses
        ([u("2+2?"), a("</think>4.")], None),  # empty reasoning: refused as well
        ([u("Q"), a("a</think>b</think>c"), u("Again?")], None),
        # tools: on the system message, or on an empty one put first
        ([s("Be useful."), u("Weather in Paris?")], WEATHER_TOOL),
        ([u("Weather in Paris?")], WEATHER_TOOL),
        ([s("First."), s("Second."), u("x")], ODD_TOOLS),
        ([u("x")], "[]"),
        # a tool-call round: calls with reasoning, results, the answer after them, a new question
        ([s("Use tools."), u("Weather in Paris and Rome?"),
          a("I need both.</think>Checking.", weather, weather2), t("18 C"), t("21 C, 3 days"),
          a("Both known.</think>Paris 18 C, Rome 21 C."), u("Thanks! And London?")], WEATHER_TOOL),
        # the round still open: the results end the prompt, the next answer opens after them
        ([u("Weather?"), a("Call it.</think>", weather), t("18 C")], WEATHER_TOOL),
        ([u("Weather?"), a(None, weather), t("18 C")], WEATHER_TOOL),
        ([u("Weather?"), a(None, weather), t("18 C"), a("18 C.")], None),
        ([u("Weather?"), a(None, weather, weather2), t("18 C")], None),  # one result missing
        ([u("Weather?"), a(None, weather), t("18 C"), u("Ok")], None),
        # argument values of every JSON kind, duplicate keys, no arguments at all
        ([u("go"), a(None, mixed), t("ok")], None),
        ([u("go"), a(None, dup, none_args), t("1"), t("2")], None),
        ([u("go"), a(None, call("f", "[1, 2]"))], None),  # arguments must be an object
        ([u("go"), a(None, call("f", "{bad json}"))], None),
        ([u("go"), a(None, call("f", '{"a": 1} x'))], None),
        ([u("go"), a(None, call("f", None))], None),
        ([u("go"), a(None, call(None, "{}"))], None),
        # tool results without their call; a result first (the encoder then reads the last message)
        ([u("x"), t("orphan")], None),
        ([t("first"), a(None, weather)], None),
        ([t("first"), u("x")], None),
        # system messages stay where they are; developer turns; unknown roles; None contents
        ([u("Hi"), s("A late system message."), a("Hello.")], None),
        ([{"role": "developer", "content": "Answer in French."}, u("Hi")], None),
        ([u("Hi"), {"role": "developer", "content": "Answer in French."}], None),
        ([{"role": "developer", "content": ""}], None),
        ([{"role": "function", "content": "x"}, u("Hi")], None),
        ([u(None)], None),
        ([u("x"), a(None, weather), t(None)], None),
        ([u("Hi"), a(None)], None),
        ([u("one"), u("two"), a("<think>r</think>ans"), a("more</think>again")], None),
    ]


def to_encoder(msgs, tools):
    """The encoder's input for a row, or None where ds_chat_render refuses what Python would
    render as "None"."""
    out = []
    for m in msgs:
        m = dict(m)
        if m.get("role") in ("user", "developer", "tool") and m.get("content") is None:
            return None
        for c in m.get("tool_calls", []):
            if c["function"]["name"] is None:
                return None
        if m.get("role") == "assistant" and m.get("content") and "</think>" in m["content"]:
            reasoning, m["content"] = m["content"].split("</think>", 1)
            m["reasoning_content"] = reasoning.removeprefix("<think>")
        out.append(m)
    if tools is not None and json.loads(tools):
        first = next((m for m in out if m.get("role") == "system"), None)
        if first is None:
            first = {"role": "system", "content": ""}
            out.insert(0, first)
        first["tools"] = json.loads(tools)
    return out


def encode(enc, msgs, tools, thinking):
    msgs = to_encoder(msgs, tools)
    if msgs is None:
        return None
    try:
        return enc.encode_messages(msgs, thinking_mode="thinking" if thinking else "chat")
    except Exception:  # noqa: BLE001 - any encoder error means "cannot render"
        return None


def llama_cpp_render(tmpl, row):
    """llama.cpp's Jinja rendition of the same row (its own message keys)."""
    msgs = []
    for m in row["messages"]:
        m = dict(m)
        if m.get("role") == "assistant" and m.get("content") and "</think>" in m["content"]:
            reasoning, m["content"] = m["content"].split("</think>", 1)
            m["reasoning_content"] = reasoning.removeprefix("<think>")
        msgs.append(m)
    tools = json.loads(row["tools"]) if row["tools"] else None
    try:
        return tmpl.render(messages=msgs, tools=tools, thinking=row["thinking"], bos_token=BOS,
                           eos_token=EOS, add_generation_prompt=row["add_generation_prompt"])
    except Exception:  # noqa: BLE001
        return None


def main():
    sys.path.insert(0, sys.argv[1])
    import encoding_dsv32 as enc  # noqa: E402 - DeepSeek's file, from the folder given
    rows = []
    for msgs, tools in conversations():
        for thinking in (False, True):
            text = encode(enc, msgs, tools, thinking)
            for agp in (True, False):
                rows.append({"messages": msgs, "add_generation_prompt": agp, "thinking": thinking,
                             "tools": tools, "text": text})
    with open(os.path.join(HERE, "deepseek-v3.2.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"deepseek-v3.2.jsonl: {len(rows)} rows, {sum(r['text'] is None for r in rows)} errors")
    with open(os.path.join(HERE, "llama.cpp-deepseek-v3.2.jinja"), encoding="utf-8") as f:
        tmpl = environment().from_string(f.read())
    differ = sum(llama_cpp_render(tmpl, r) != r["text"] for r in rows)
    print(f"llama.cpp's V3.2 template: {len(rows) - differ} rows as the encoder, {differ} different")


if __name__ == "__main__":
    main()
