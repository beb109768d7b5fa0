#!/usr/bin/env python3
"""Extracts the request example of every MSDK interface of seed 002 into JSON.

The examples are the wire truth (the platform's own samples): the sandbox checks
every request's member types against them, and gamegate's conformance test checks
its route declarations against them. Run it again when the seed changes:

    python3 tools/seed_request_examples.py ../shared/seeds/002_*.txt \
        > crates/sandbox/src/msdk/seed_request_examples.json

The seed's JSON is hand-written: curly quotes, trailing commas, `//` comments, an
unquoted placeholder and a line break inside a string are repaired, and nothing else.
"""
import json
import re
import sys
from urllib.parse import parse_qsl, urlsplit

# What gamegate puts in every MSDK URL itself (SIGNING.md): not interface parameters.
FIXED_QUERY = {"timestamp", "appid", "sig", "openid", "encode"}


def repair(text):
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    # A comment after a value: `],//json 데이터 배열`.
    text = re.sub(r'(?<=[\]\},"\d])\s*//[^\n"]*$', "", text, flags=re.M)
    # An unquoted placeholder (`"appid": xxxxxxxxxxx,`) stands for a number: 0.
    text = re.sub(r":\s*x+\s*,", ": 0,", text)
    # A string broken over two lines.
    text = re.sub(r'([^",\[\{\s])\n"', r'\1"', text)
    # Trailing commas.
    text = re.sub(r",(\s*[\}\]])", r"\1", text)
    return text


def main(seed_path):
    lines = open(seed_path, encoding="utf-8").read().split("\n")
    starts = [i for i, l in enumerate(lines) if re.match(r"^1\)인터페이스 (이름|명칭)", l)]
    starts.append(len(lines))
    examples = {}
    for a, b in zip(starts, starts[1:]):
        path = re.search(r"(/\w+/\w+)", lines[a]).group(1)
        section = lines[a:b]
        example = next(i for i, l in enumerate(section) if l.startswith("6) 예시"))
        request_line, content_type, start = None, None, None
        for i in range(example + 1, len(section)):
            line = section[i]
            if re.match(r"^(POST|GET) ", line) or line.startswith("http"):
                request_line = line
            if line.lower().startswith("content-type:"):
                content_type = line.split(":", 1)[1].strip()
            if line.strip().startswith("{"):
                start = i
                break
            if line.startswith("//"):
                break
        body = None
        if start is not None:
            depth, taken = 0, []
            for line in section[start:]:
                taken.append(line)
                depth += line.count("{") - line.count("}")
                if depth <= 0:
                    break
            body = json.loads(repair("\n".join(taken)))
        method, query = "POST", []
        if request_line:
            parts = request_line.split()
            if parts[0] in ("GET", "POST"):
                method, url = parts[0], parts[1]
            else:
                method, url = "GET", parts[0]
            query = [n for n, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)
                     if n not in FIXED_QUERY]
        examples[path] = {
            "method": method,
            "query": query,
            "content_type": content_type,
            "body": body,
        }
    json.dump(examples, sys.stdout, ensure_ascii=False, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
