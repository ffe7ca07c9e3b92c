package kube

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"
)

// SharedFileName is the file of Files holding the project's shared objects
// (the Namespace, the token Secret); it sorts before the cells' files,
// which is the order `kubectl apply -f DIR` takes them in.
const SharedFileName = "00-project.yaml"

// File is one file of an export written to a directory.
type File struct {
	Name string
	Data []byte
}

// MarshalObject writes one object as a YAML document, keys sorted, without
// what a manifest never sets: its status, an empty spec (a Namespace's),
// "creationTimestamp: null" and a container's empty resources.
func MarshalObject(o Object) ([]byte, error) {
	data, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", kindOf(o), o.GetName(), err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", kindOf(o), o.GetName(), err)
	}
	delete(m, "status")
	if spec, ok := m["spec"].(map[string]any); ok && len(spec) == 0 {
		delete(m, "spec") // a Namespace's
	}
	prune(m)
	out, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", kindOf(o), o.GetName(), err)
	}
	return out, nil
}

// prune drops, anywhere in v, "creationTimestamp: null" and the empty
// "resources" of a container. Other empty mappings stay: some are
// meaningful ("emptyDir: {}", a "podSelector: {}" selecting every pod).
func prune(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k == "creationTimestamp" && e == nil {
				delete(v, k)
				continue
			}
			if k == "containers" {
				if list, ok := e.([]any); ok {
					for _, c := range list {
						if c, ok := c.(map[string]any); ok {
							if r, ok := c["resources"].(map[string]any); ok && len(r) == 0 {
								delete(c, "resources")
							}
						}
					}
				}
			}
			prune(e)
		}
	case []any:
		for _, e := range v {
			prune(e)
		}
	}
}

// kindOf is an object's kind, for messages.
func kindOf(o Object) string { return o.GetObjectKind().GroupVersionKind().Kind }

// stream writes objects as one multi-document YAML stream.
func stream(objs []Object) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		data, err := MarshalObject(o)
		if err != nil {
			return nil, err
		}
		buf.Write(data)
	}
	return buf.Bytes(), nil
}

// YAML writes the whole export as one multi-document stream, in order.
func (e *Export) YAML() ([]byte, error) { return stream(e.Objects()) }

// Files writes the export as one file per cell, <cell>.yaml, after
// SharedFileName when the export has shared objects.
func (e *Export) Files() ([]File, error) {
	var files []File
	if len(e.Shared) > 0 {
		data, err := stream(e.Shared)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: SharedFileName, Data: data})
	}
	for _, c := range e.Cells {
		name := c.Cell + ".yaml"
		if name == SharedFileName {
			return nil, fmt.Errorf("cell %s: its file would be the project's %s", c.Cell, SharedFileName)
		}
		data, err := stream(c.Objects)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: name, Data: data})
	}
	return files, nil
}
