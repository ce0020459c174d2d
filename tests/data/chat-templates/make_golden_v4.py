#!/usr/bin/python3
"""Render conversations with llama.cpp's DeepSeek-V4 chat templates and write the golden rows
test_chat checks ds_chat_render's DS_CHAT_DEEPSEEK4 against (see README.md).

usage: make_golden_v4.py FIXTURES_DIR    (the folder holding tokenizer-deepseek-v3/, tokenizer-tiny/)

DeepSeek-V4 ships no Jinja template (its repositories have encoding/encoding_dsv4.py); the text
a V4 GGUF carries is the one llama.cpp's converter writes, models/templates/
deepseek-ai-DeepSeek-V4.jinja (V4-Flash-0731: deepseek-ai-DeepSeek-V4-Flash-0731.jinja), kept here
as llama.cpp-deepseek-v4.jinja and llama.cpp-deepseek-v4-flash-0731.jinja. This script renders
them with Jinja2 as make_golden.py does (transformers' environment, plus llama.cpp's from_json
filter as json.loads) and writes deepseek-v4.jsonl next to itself.

Conversations: make_golden.py's 28 and V3.1's 11, make_golden_v32.py's 38 (tools among them) and
V4's own below, each with thinking unset, false and true and add_generation_prompt true and
false. A row is {"messages", "add_generation_prompt", ["thinking"], ["tools"], "text"} as in the
other .jsonl files ("thinking" absent: not passed; "tools": JSON text, absent: not passed). The
mapping to the template's input is V3.2's (make_golden_v32.py): an assistant's content "R</think>A"
is reasoning_content R (a leading <think> dropped) and content A; the tools are the `tools`
variable. "text" is null where the template raises.

Checked as well, without rows of their own: the V4-Flash-0731 template renders every row the same
(it differs only where reasoning_effort is 'high' or 'max', which ds_chat_params does not carry);
enable_thinking renders as thinking; and passing the tool-call arguments parsed (as llama.cpp
does) renders as passing their JSON text."""
import json
import os
import sys

from make_golden import (BOS, EOS, call, environment, extra_conversations, fixture_conversations,
                         v31_conversations, with_object_arguments)
import make_golden_v32

HERE = os.path.dirname(os.path.abspath(__file__))


def u(c): return {"role": "user", "content": c}
def s(c): return {"role": "system", "content": c}
def t(c): return {"role": "tool", "content": c}
def d(c): return {"role": "developer", "content": c}


def a(c, *calls):
    m = {"role": "assistant", "content": c}
    if calls:
        m["tool_calls"] = list(calls)
    return m


WEATHER = make_golden_v32.WEATHER_TOOL
TOOLS2 = json.dumps([
    {"type": "function", "function": {"name": "get_weather", "description": "Météo d'une ville (天气)",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
                                          "required": ["city"]}}},
    {"type": "function", "function": {"name": "search", "description": "Search \"the web\"\n\ttabbed",
                                      "parameters": {"type": "object", "properties": {
                                          "q": {"type": "string"}, "n": {"type": "integer", "default": 5},
                                          "filters": {"type": "object"}}}}},
], ensure_ascii=False)
# entries the template skips (no type, another type, not objects), a null function, escapes
ODD_TOOLS = ('[{"function": {"name": "untyped"}}, {"type": "retrieval", "function": {"name": "kb"}},'
             ' 7, "function", [1], {"type": "function", "function": null},'
             ' {"type": "\\u0066unction", "function": {"name": "esc\\u00e9", "x": 1.50, "y": 1e5}}]')
ONLY_OTHER_TOOLS = '[{"type": "retrieval", "function": {"name": "kb"}}]'
NO_FUNCTION_TOOL = '[{"type": "function"}]'
TOOLS_OBJECT = '{"type": "function"}'

weather = call("get_weather", '{"city": "Paris"}')
weather_rome = call("get_weather", '{"city":"Rome","unit":"C"}')
nested = call("search", '{"q": "café ☕ 東京", "n": 3, "filters": {"lang": ["fr", "ja"], "safe": true,'
                        ' "since": null, "score": {"min": 0.5, "max": 1e3}}, "empty": {}, "list": [],'
                        ' "s": "", "multi": "line one\\nline two\\t\\"quoted\\" </｜DSML｜parameter>"}')
unicode_name = call("天气_查询", '{"城市": "北京", "😀": [1, "二", {"三": 3}]}')
no_args = call("ping", "{}")
spaced = call("search", '  {\n  "q" :  "x" ,\n  "n":  -0 , "big": 12345678901234567890123 }  ')
dup = call("dup", '{"a": 1, "b": 2, "a": "last"}')


def v4_conversations():
    """V4's own cases: reasoning kept or dropped, the user run, tool results, tools, DSML calls."""
    return [
        # earlier reasoning dropped in thinking mode (no tools, no tool messages), the last kept
        ([u("2+2?"), a("<think>2+2 is 4.</think>4."), u("3*3?"), a("3*3 = 9</think>9.")], None),
        ([u("2+2?"), a("<think>2+2 is 4.</think>4."), u("3*3?")], None),
        # with tools every answer keeps its reasoning, with tool messages too
        ([s("Be brief."), u("2+2?"), a("<think>2+2 is 4.</think>4."), u("Weather?")], WEATHER),
        ([u("Q1"), a("r1</think>A1"), u("Weather?"), a("need it</think>", weather), t("18 C"),
          a("got it</think>18 C.")], None),
        # a tool-call round: text and reasoning with calls, two results in one user turn, the answer
        ([s("Use tools."), u("Weather in Paris and Rome?"),
          a("I need both.</think>Checking.", weather, weather_rome), t("18 C"), t("21 C"),
          a("Both known.</think>Paris 18 C, Rome 21 C."), u("Thanks! And London?")], TOOLS2),
        # the round still open: the results end the prompt
        ([u("Weather?"), a(None, weather), t("18 C")], TOOLS2),
        ([u("Weather?"), a("", weather), t("18 C"), t("again"), u("and a question after them")], TOOLS2),
        # argument values: non-ASCII, nested, empty, escapes, no arguments, spacing, duplicates
        ([u("search"), a(None, nested, no_args), t("[]"), t("pong")], TOOLS2),
        ([u("天气?"), a("<think>用工具</think>", unicode_name), t("晴")], None),
        ([u("go"), a(None, spaced, dup), t("1"), t("2")], None),
        # calls in a turn that is not after a user; two assistant turns in a row
        ([u("go"), a(None, weather), a("more", no_args), t("x")], None),
        ([a("<think>r</think>first"), u("Hi")], None),
        # the user run: developer turns, system messages and unknown roles do not end it
        ([u("one"), u("two"), d("three"), a("ok")], None),
        ([u("Hi"), s("A late system message."), u("again"), {"role": "function", "content": "x"},
          u("and again")], None),
        ([d("Answer in French."), u("Hi")], None),
        ([t("a result first"), u("then a question")], None),
        # system prompts: joined, None as empty, empty ones, with and without tools
        ([s(None), s("Second."), u("x")], None),
        ([s(None), u("x")], WEATHER),
        ([s(""), u("x")], WEATHER),
        ([s(""), s(""), u("x")], WEATHER),
        ([s("Sys.")], WEATHER),
        ([], WEATHER),
        # tools the template skips, an empty list, only other tools
        ([u("x")], ODD_TOOLS),
        ([u("x")], "[]"),
        ([s("Sys."), u("x")], ONLY_OTHER_TOOLS),
        # None contents are empty texts; an answer of None
        ([u(None), a(None), t(None), u("x")], None),
        ([u("Hi"), a("<think>only reasoning</think>")], None),
        ([u("Hi"), a("</think>")], None),
        # refusals: bad arguments, no name, a function tool without its function
        ([u("go"), a(None, call("f", '"a string"'))], None),
        ([u("go"), a(None, call("f", "null"))], None),
        ([u("go"), a(None, call("f", "3"))], None),
        ([u("go"), a(None, call("f", '{"a": 1,}'))], None),
        ([u("x")], NO_FUNCTION_TOOL),
    ]


def to_template(msgs):
    """The template's messages for a row's: reasoning split off as reasoning_content."""
    out = []
    for m in msgs:
        m = dict(m)
        if m.get("role") == "assistant" and m.get("content") and "</think>" in m["content"]:
            reasoning, m["content"] = m["content"].split("</think>", 1)
            m["reasoning_content"] = reasoning.removeprefix("<think>")
        out.append(m)
    return out


def render(tmpl, msgs, tools, thinking, agp, switch="thinking", parsed_args=False):
    extra = {} if thinking is None else {switch: thinking}
    if tools is not None:
        extra["tools"] = json.loads(tools)
    m = to_template(msgs)
    if parsed_args:
        try:
            m = with_object_arguments(m)
        except Exception:  # noqa: BLE001 - bad JSON: the template's from_json raises as well
            return None
    try:
        return tmpl.render(messages=m, add_generation_prompt=agp, bos_token=BOS, eos_token=EOS,
                           pad_token=EOS, **extra)
    except Exception:  # noqa: BLE001 - any template error means "cannot render"
        return None


def main():
    fixtures = sys.argv[1]
    env = environment()
    with open(os.path.join(HERE, "llama.cpp-deepseek-v4.jinja"), encoding="utf-8") as f:
        v4 = env.from_string(f.read())
    with open(os.path.join(HERE, "llama.cpp-deepseek-v4-flash-0731.jinja"), encoding="utf-8") as f:
        flash = env.from_string(f.read())
    plain = fixture_conversations(fixtures) + extra_conversations() + v31_conversations()
    convs = [(m, None) for m in plain] + make_golden_v32.conversations() + v4_conversations()
    rows, checked = [], 0
    for msgs, tools in convs:
        for thinking in (None, False, True):
            for agp in (True, False):
                text = render(v4, msgs, tools, thinking, agp)
                assert render(flash, msgs, tools, thinking, agp) == text, (msgs, tools, thinking, agp)
                if thinking is not None:
                    assert render(v4, msgs, tools, thinking, agp, switch="enable_thinking") == text
                try:
                    parsed = render(v4, msgs, tools, thinking, agp, parsed_args=True)
                except Exception:  # noqa: BLE001
                    parsed = None
                assert parsed == text, (msgs, tools, thinking, agp)
                checked += 1
                row = {"messages": msgs, "add_generation_prompt": agp}
                if thinking is not None:
                    row["thinking"] = thinking
                if tools is not None:
                    row["tools"] = tools
                rows.append({**row, "text": text})
    with open(os.path.join(HERE, "deepseek-v4.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"deepseek-v4.jsonl: {len(rows)} rows ({len(convs)} conversations), "
          f"{sum(r['text'] is None for r in rows)} errors; V4-Flash-0731's template, enable_thinking "
          f"and parsed arguments render all {checked} the same")


if __name__ == "__main__":
    main()
