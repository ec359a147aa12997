// netpol answers, for a set of Kubernetes NetworkPolicies, whether each given
// connection is allowed. Every verdict is cyclonus's (pkg/matcher): this
// program only decodes the input, builds cyclonus's policy and reports its
// answer per direction. It makes no decision of its own.
//
// Input on stdin:
//
//	{"networkPolicies": [<NetworkPolicy>...],
//	 "namespaces": {"<name>": {"<label>": "<value>"}},
//	 "queries": [{"from": <peer>, "to": <peer>, "port": 5432, "portName": "", "protocol": "TCP"}]}
//
// A peer is a pod, {"namespace": "knhk", "podLabels": {...}, "ip": "10.244.0.10"}
// (its IP too: cyclonus matches ipBlock rules against pods' IPs as well), or an
// address outside the cluster, {"ip": "52.219.0.1"}.
//
// Output on stdout, one result per query, in order:
//
//	{"results": [{"allowed": bool,
//	  "ingress": {"allowed": bool, "allowedBy": [<target>...], "deniedBy": [<target>...]},
//	  "egress": {...}}]}
//
// Bad input exits 1 with a message naming the field.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "netpol: %v\n", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	var req Request
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	res, err := Evaluate(req)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", " ")
	return enc.Encode(res)
}
