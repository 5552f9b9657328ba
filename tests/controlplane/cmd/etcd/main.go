// Command etcd is etcd's own server entry point, built at the version the
// pinned Kubernetes release expects.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
