#!/usr/bin/env python3
"""Creates MappedDomains b1..bN in namespace `default`, concurrently, straight
against the API server of a kubeconfig written by controlplane.sh (client
certificate files), so that creating them costs no kubectl start-ups and
hides nothing of the controller.

    create.py KUBECONFIG N [WRITERS]

Each object: domain bI.bench.example, checkInterval 10s. Exits non-zero if
any create is refused.
"""
import http.client
import json
import re
import ssl
import sys
import threading


def kubeconfig(path):
    text = open(path).read()
    field = lambda key: re.search(rf"{key}: (\S+)", text).group(1)
    host, port = re.match(r"https://([^:]+):(\d+)", field("server")).groups()
    context = ssl.create_default_context(cafile=field("certificate-authority"))
    context.load_cert_chain(field("client-certificate"), field("client-key"))
    return host, int(port), context


def main():
    path, n = sys.argv[1], int(sys.argv[2])
    writers = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    host, port, context = kubeconfig(path)
    url = "/apis/closte-operator.io/v1alpha1/namespaces/default/mappeddomains"
    failures = []

    def write(first):
        connection = http.client.HTTPSConnection(host, port, context=context)
        for i in range(first, n + 1, writers):
            body = json.dumps({
                "apiVersion": "closte-operator.io/v1alpha1",
                "kind": "MappedDomain",
                "metadata": {"name": f"b{i}"},
                "spec": {"domain": f"b{i}.bench.example", "checkInterval": "10s"},
            })
            connection.request("POST", url, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            if response.status != 201:
                failures.append(f"b{i}: HTTP {response.status} {answer[:200]!r}")

    threads = [threading.Thread(target=write, args=(w + 1,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        sys.exit(f"{len(failures)} creates failed, e.g. {failures[0]}")


main()
