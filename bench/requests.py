#!/usr/bin/env python3
"""Sends N requests to the sidecar's native door, one at a time over one
connection, and prints the latency of each kind: PUT /v1/domains/D (request
-> MappedDomain stored: the answer comes after the API server took it).

    requests.py URL TOKEN N
"""
import http.client
import json
import sys
import time
import urllib.parse


def main():
    url, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies = []
    for i in range(1, n + 1):
        body = json.dumps({"siteId": 1 + i % 50})
        started = time.perf_counter()
        connection.request("PUT", f"/v1/domains/s{i}.sidecar.example", body, headers)
        response = connection.getresponse()
        answer = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 201:
            sys.exit(f"s{i}: HTTP {response.status} {answer[:200]!r}")
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000
    print(f"request -> MappedDomain stored   p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms over {n} requests")


main()
