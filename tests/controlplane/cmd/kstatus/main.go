// Command kstatus prints what kstatus (sigs.k8s.io/cli-utils), the library
// Flux and kubectl's tooling judge objects with, makes of each object of a
// JSON list read on stdin (`kubectl get -o json`): one line per object,
// NAME<TAB>STATUS<TAB>MESSAGE.
package main

import (
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var list struct {
		Items []map[string]interface{} `json:"items"`
	}
	// apimachinery's json keeps whole numbers as int64, as unstructured expects
	if err := json.Unmarshal(input, &list); err != nil {
		fail(err)
	}
	for _, item := range list.Items {
		object := &unstructured.Unstructured{Object: item}
		result, err := status.Compute(object)
		if err != nil {
			fail(err)
		}
		fmt.Printf("%s\t%s\t%s\n", object.GetName(), result.Status, result.Message)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(1)
}
