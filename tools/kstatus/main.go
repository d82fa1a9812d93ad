// Command kstatus prints the verdict of sigs.k8s.io/cli-utils' kstatus library (the status
// reader Flux, kpt and cli-utils' apply use) for Kubernetes objects given as JSON on stdin.
//
// The input is one object, a List (`kubectl get ... -o json`), or several objects one
// after another. Each object gets one JSON line on stdout:
//
//	{"kind":"ReconJob","namespace":"studio","name":"chair-001","status":"Current","message":"..."}
//
// Usage: kubectl get reconjobs -n studio -o json | kstatus
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: kstatus < objects.json  (one object, a List, or a stream of objects)")
		os.Exit(2)
	}
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	decoder := json.NewDecoder(bufio.NewReader(in))
	encoder := json.NewEncoder(out)
	count := 0
	for {
		var raw json.RawMessage
		err := decoder.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		var content map[string]interface{}
		if err == nil {
			// Kubernetes' own decoder, so integers stay int64 as kstatus' accessors expect.
			err = utiljson.Unmarshal(raw, &content)
		}
		if err != nil {
			return fmt.Errorf("input is not a JSON object (document %d): %w", count+1, err)
		}
		count++
		objects, err := expand(content)
		if err != nil {
			return fmt.Errorf("document %d: %w", count, err)
		}
		for _, obj := range objects {
			result, err := status.Compute(obj)
			if err != nil {
				return fmt.Errorf("%s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
			}
			if err := encoder.Encode(verdict{
				Kind:      obj.GetKind(),
				Namespace: obj.GetNamespace(),
				Name:      obj.GetName(),
				Status:    result.Status.String(),
				Message:   result.Message,
			}); err != nil {
				return err
			}
		}
	}
	if count == 0 {
		return errors.New("no object on stdin")
	}
	return nil
}

// expand turns a List into its items and checks that each object names its kind.
func expand(content map[string]interface{}) ([]*unstructured.Unstructured, error) {
	kind, _ := content["kind"].(string)
	if kind == "" {
		return nil, errors.New(`the object has no "kind"`)
	}
	if !strings.HasSuffix(kind, "List") {
		return []*unstructured.Unstructured{{Object: content}}, nil
	}
	items, _ := content["items"].([]interface{})
	objects := make([]*unstructured.Unstructured, 0, len(items))
	for i, item := range items {
		obj, ok := item.(map[string]interface{})
		if !ok {
			return nil, fmt.Errorf("items[%d] is not an object", i)
		}
		if _, ok := obj["kind"].(string); !ok {
			// `kubectl get -o json` lists carry kind and apiVersion per item; an API list
			// response does not, and kstatus needs them to pick its rules.
			obj["kind"] = strings.TrimSuffix(kind, "List")
			if apiVersion, ok := content["apiVersion"].(string); ok {
				obj["apiVersion"] = apiVersion
			}
		}
		objects = append(objects, &unstructured.Unstructured{Object: obj})
	}
	return objects, nil
}
