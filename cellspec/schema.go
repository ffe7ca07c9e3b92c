package cellspec

import (
	"bytes"
	"encoding/json"
)

// SchemaID is the $id of the cell file's JSON Schema.
const SchemaID = "https://github.com/orchestro/orchestro/schemas/cell.schema.json"

// Schema returns the JSON Schema (draft 2020-12) of the cell file, indented,
// for editors: yaml-language-server uses it for completion, hover help and
// early errors.
//
// The schema describes the file as written, before interpolation. Since any
// scalar may still be a ${VAR} reference at that point, every integer,
// number, boolean, duration and enumerated field also accepts a string that
// starts with "${"; the loader checks the value once it is substituted.
//
// The loader stays the authority. The schema rejects the same unknown keys,
// but it cannot express checks that span fields (unique route paths, routes
// and depends_on naming services of the cell, min <= max, dependency cycles,
// and in flows: the names expressions use, unique step ids and flow names,
// call targets, route collisions, backoff <= max_backoff) or files (unique
// cell names and gateway ports, uses naming known cells).
func Schema() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cellSchema()); err != nil {
		// The schema is built from maps, slices, strings, numbers and
		// booleans only; encoding cannot fail.
		panic("cellspec: encode schema: " + err.Error())
	}
	return buf.Bytes()
}

// node is one JSON Schema object. encoding/json writes map keys sorted, so
// the output is stable.
type node = map[string]any

// Regular expressions of the schema. They are written in the common subset
// of ECMA-262 (what editors run) and RE2 (what Go validators run): no
// lookaround, no backreferences.
const (
	// dnsLabelPattern is an RFC 1123 label in lower case, as IsDNSLabel
	// accepts.
	dnsLabelPattern = `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`

	// interpolationPattern matches a value still holding a ${VAR} reference.
	interpolationPattern = `^\$\{`

	// positiveDurationPattern is a Go duration (time.ParseDuration) greater
	// than zero: optional all-zero segments, one segment with a non-zero
	// digit, then any segments ("0h5m", "1m30s", "250ms", "1.5h"). A bare
	// number is refused, as the loader refuses it.
	positiveDurationPattern = `^(` + zeroNumber + durationUnit + `)*` +
		`(` + nonZeroNumber + durationUnit + `)` +
		`(` + anyNumber + durationUnit + `)*$`
	anyNumber     = `([0-9]+(\.[0-9]*)?|\.[0-9]+)`
	zeroNumber    = `(0+(\.0*)?|\.0+)`
	nonZeroNumber = `([0-9]*[1-9][0-9]*(\.[0-9]*)?|[0-9]*\.[0-9]*[1-9][0-9]*)`
	durationUnit  = `(ns|us|µs|μs|ms|s|m|h)`

	// memoryPattern is a size as docker's units.RAMInBytes reads it: a
	// number, an optional space, an optional binary unit.
	memoryPattern = `^[0-9]+(\.[0-9]+)? ?([kKmMgGtTpP]([iI]?[bB])?|[bB])?$`

	// volumePattern is source:target[:ro|rw] with an absolute target. A
	// ${VAR:-default} reference may hold a colon of its own.
	volumePattern = `^(\$\{[^}]*\}|[^:])+:(\$\{[^}]*\}|/)(\$\{[^}]*\}|[^:])*(:(ro|rw))?$`

	// routePathPattern is a plain path prefix: a leading slash and no query,
	// fragment or space.
	routePathPattern = `^/[^?# ]*$`

	// envEntryPattern is a NAME=value list entry.
	envEntryPattern = `^[^=]+=`
)

// boolWords returns the spellings the loader reads as v besides the YAML
// boolean itself; YAML 1.2 editors see them as strings.
func boolWords(v bool) []any {
	if v {
		return []any{"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"}
	}
	return []any{"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"}
}

// describe sets the title and description that editors show on hover.
func describe(s node, title, description string) node {
	s["title"] = title
	s["description"] = description
	return s
}

func ref(name string) node { return node{"$ref": "#/$defs/" + name} }

// orVar accepts s or, before interpolation, a ${VAR} reference.
func orVar(s node) node { return node{"anyOf": []any{s, ref("interpolation")}} }

// object is a mapping whose keys are fixed: any other key is an error, as in
// the loader.
func object(props node, required ...string) node {
	s := node{"type": "object", "additionalProperties": false, "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func withDefault(s node, v any) node {
	s["default"] = v
	return s
}

func integerAtLeast(lo int) node { return orVar(node{"type": "integer", "minimum": lo}) }

func numberAtLeast(lo int) node { return orVar(node{"type": "number", "minimum": lo}) }

// command is an argv: a list, or one string split on white space.
func command(minItems int) node {
	list := node{"type": "array", "items": node{"type": []any{"string", "number", "boolean"}}}
	if minItems > 0 {
		list["minItems"] = minItems
	}
	return node{"oneOf": []any{
		node{"type": "string", "pattern": `\S`},
		list,
	}}
}

// rootSchema is the top of the schema document: a struct, so that $schema,
// $id and the title come first in the output.
type rootSchema struct {
	Schema               string   `json:"$schema"`
	ID                   string   `json:"$id"`
	Title                string   `json:"title"`
	Description          string   `json:"description"`
	Type                 string   `json:"type"`
	Required             []string `json:"required"`
	AdditionalProperties bool     `json:"additionalProperties"`
	Properties           node     `json:"properties"`
	Defs                 node     `json:"$defs"`
}

func cellSchema() rootSchema {
	s := baseSchema()
	for name, def := range flowSchemaDefs() {
		s.Defs[name] = def
	}
	return s
}

func baseSchema() rootSchema {
	return rootSchema{
		Schema:               "https://json-schema.org/draft/2020-12/schema",
		ID:                   SchemaID,
		Title:                "orchestro cell",
		Description:          "One cell: a group of services behind one cell gateway. Values may use ${VAR}, ${VAR:-default}, ${VAR-default} and ${VAR:?message}, read from the environment and the .env file beside the spec; $$ is a literal $.",
		Type:                 "object",
		Required:             []string{"cell", "gateway", "services"},
		AdditionalProperties: false,
		Properties: node{
			"cell": describe(orVar(ref("dnsLabel")), "Cell name",
				"The cell's name, unique in the project: a lower-case DNS label. Other cells reach this one as http://<cell>:<gateway port>."),
			"gateway": describe(ref("gateway"), "Cell gateway",
				"The cell's only entrance: a reverse proxy and load balancer over the healthy replicas of its services."),
			"uses": describe(node{
				"type":        "array",
				"uniqueItems": true,
				"items":       orVar(ref("dnsLabel")),
			}, "Cells used",
				"Cells this cell may call, as http://<cell>:<its gateway port>. A cell not listed here cannot be reached."),
			"services": describe(node{
				"type":                 "object",
				"minProperties":        1,
				"propertyNames":        ref("dnsLabel"),
				"additionalProperties": ref("service"),
			}, "Services",
				"The cell's services by name (lower-case DNS labels). A cell runs at least one service."),
			"flows": describe(node{"type": "array", "items": ref("flow")}, "Flows",
				"Routes of the gateway whose answer is composed from calls to several services: sequential steps, parallel groups, templated requests, retries and compensation."),
		},
		Defs: node{
			"interpolation": describe(node{"type": "string", "pattern": interpolationPattern}, "Variable reference",
				"A ${VAR} reference, checked once it is substituted from the environment or the .env file beside the spec."),
			"dnsLabel": describe(node{"type": "string", "maxLength": 63, "pattern": dnsLabelPattern}, "DNS label",
				"Lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit."),
			"port": describe(orVar(node{"type": "integer", "minimum": 1, "maximum": 65535}), "Port",
				"A TCP port, 1-65535."),
			"duration": describe(orVar(node{"type": "string", "pattern": positiveDurationPattern}), "Duration",
				"A positive Go duration with a unit: 500ms, 2s, 1m30s."),
			"boolean": describe(node{"anyOf": []any{
				node{"type": "boolean"},
				node{"enum": append(boolWords(true), boolWords(false)...)},
				ref("interpolation"),
			}}, "Boolean", "true or false (yes/no and on/off are read as well)."),
			"stringMap": describe(node{"oneOf": []any{
				node{"type": "object", "additionalProperties": node{"type": []any{"string", "number", "boolean", "null"}}},
				node{"type": "array", "items": node{"type": "string", "pattern": envEntryPattern}},
			}}, "Variables", "A mapping of NAME: value, or a list of NAME=value strings."),
			"gateway": describe(object(node{
				"port": describe(ref("port"), "Gateway port",
					"Host port of the cell's entrance, unique in the project: published on 127.0.0.1:<port>, and <cell>:<port> inside the mesh."),
				"balance": withDefault(describe(orVar(node{"enum": []any{BalanceRoundRobin, BalanceLeastRequest}}), "Balance policy",
					"How the gateway picks a replica: round_robin (default) or least_request."), DefaultBalance),
				"routes": describe(node{"type": "array", "items": ref("route")}, "Routes",
					"Path prefixes mapped to services; the longest matching prefix wins. Default: /<service> for every service that has a port. routes: [] means no routes."),
				"listeners": describe(node{"type": "array", "items": describe(object(node{
					"port": describe(ref("port"), "Port",
						"Host port, unique in the project: published on 127.0.0.1:<port>, and <cell>:<port> inside the mesh."),
					"service": describe(orVar(ref("dnsLabel")), "Service",
						"The service of this cell every request on the port goes to, with its path as it is; it must have a port."),
				}, "port", "service"), "Listener", "A host port whose requests all go to one service.")}, "Listeners",
					"More host ports of the gateway, each sending every request, whatever its path, to one service, balanced, retried and metered like a route. A compose service's published port becomes one."),
				"outlier": describe(ref("outlier"), "Outlier ejection",
					"Passive health tuning for every service of the cell; a service's own outlier overrides it field by field."),
				"fast_path": withDefault(describe(ref("boolean"), "Fast path",
					"false serves every request through Go's net/http server instead of the gateway's own HTTP/1 fast path: slower (about 0.6× the requests/s), for ruling the fast path out when you suspect it. Default true."), true),
				"access_log": accessLogSchema(),
				"procs": describe(orVar(node{"type": "integer", "minimum": 1, "maximum": maxGatewayProcs}), "Procs",
					"How many CPUs the gateway's process runs on at once (Go's GOMAXPROCS). Default: every CPU it may use. 1 gives a lower tail latency on a small machine it shares with its replicas, at some cost in requests/s."),
			}, "port"), "Gateway", "The cell's entrance."),
			"route": describe(object(node{
				"path": describe(orVar(node{"type": "string", "pattern": routePathPattern}), "Path prefix",
					"The path prefix this route serves, starting with /, for example /orders."),
				"service": describe(orVar(ref("dnsLabel")), "Service",
					"The service of this cell the route sends to; it must have a port."),
				"strip_prefix": withDefault(describe(ref("boolean"), "Strip prefix",
					"Remove the path prefix before forwarding. Default false."), false),
				"timeout": withDefault(describe(ref("duration"), "Timeout",
					"Time allowed for one try. Default 30s."), DefaultRouteTimeout.String()),
				"retries": withDefault(describe(integerAtLeast(0), "Retries",
					"Further tries on other replicas, for idempotent methods and for any method when the connection was never made. Default 2."), DefaultRouteRetries),
			}, "path", "service"), "Route", "Sends requests under a path prefix to a service."),
			"service": serviceSchema(),
			"build": describe(node{"oneOf": []any{
				node{"type": "string", "minLength": 1},
				object(node{
					"context": describe(node{"type": "string", "minLength": 1}, "Build context",
						"Dockerfile context directory, relative to this file."),
					"dockerfile": describe(node{"type": "string", "minLength": 1}, "Dockerfile",
						"Dockerfile name inside the context. Default Dockerfile."),
					"args": describe(ref("stringMap"), "Build arguments",
						"Build arguments (ARG) as NAME: value or NAME=value."),
					"target": describe(node{"type": "string", "minLength": 1}, "Build target",
						"The build stage to stop at."),
				}, "context"),
				object(node{
					"go": describe(node{"type": "string", "minLength": 1}, "Go package",
						"Directory of a Go main package, relative to this file, compiled with CGO off into a FROM scratch image."),
				}, "go"),
			}}, "Build", "How the image is made: a Dockerfile context directory, {context, dockerfile, args, target}, or {go: ./cmd/x}."),
			"health":    healthSchema(),
			"autoscale": autoscaleSchema(),
			"outlier":   outlierSchema(),
			"resources": describe(object(node{
				"cpus": describe(orVar(node{"type": "number", "exclusiveMinimum": 0}), "CPUs",
					"CPU limit as a fraction of cores, for example 0.5."),
				"memory": describe(node{"anyOf": []any{
					node{"type": "integer", "minimum": 1},
					node{"type": "string", "pattern": memoryPattern},
					ref("interpolation"),
				}}, "Memory", "Memory limit in bytes or with a unit: 256M, 1G."),
			}), "Resources", "Limits of each replica; absent means unlimited."),
		},
	}
}

func serviceSchema() node {
	needsPort := func(s node) node { return node{"if": s, "then": node{"required": []string{"port"}}} }
	s := describe(object(node{
		"build": describe(ref("build"), "Build",
			"How the image is made. Exactly one of build and image."),
		"image": describe(node{"type": "string", "minLength": 1}, "Image",
			"An existing image, for example example/orders:1.4. Exactly one of build and image."),
		"port": describe(ref("port"), "Port",
			"The port the service listens on in its container. Routes and http/tcp health checks use it."),
		"command": describe(command(0), "Command",
			"The command run in the container: a list of arguments, or one string split on white space."),
		"entrypoint": describe(command(0), "Entrypoint",
			"Overrides the image's entrypoint: a list of arguments, or one string split on white space."),
		"env": describe(ref("stringMap"), "Environment",
			"Environment variables as NAME: value or a list of NAME=value."),
		"replicas": withDefault(describe(integerAtLeast(0), "Replicas",
			"Number of replicas; 0 is allowed. Default 1, or autoscale.min."), DefaultReplicas),
		"restart": withDefault(describe(orVar(node{"enum": []any{RestartAlways, RestartOnFailure, RestartNever}}), "Restart policy",
			"When a replica that exits is replaced: always (default), on-failure or never."), DefaultRestart),
		"health": describe(ref("health"), "Health check",
			"The active health check: exactly one of http, tcp and exec."),
		"autoscale": describe(ref("autoscale"), "Autoscale",
			"Scale between min and max replicas from in-flight requests, requests per second and CPU; the largest demand wins."),
		"outlier": describe(ref("outlier"), "Outlier ejection",
			"Passive health tuning for this service; overrides the gateway's outlier field by field."),
		"resources": describe(ref("resources"), "Resources",
			"Limits of each replica."),
		"volumes": describe(node{"type": "array", "items": node{"type": "string", "pattern": volumePattern}}, "Volumes",
			"Mounts: name:/path (a named volume of the project) or ./dir:/path (a bind mount relative to this file), with :ro or :rw."),
		"depends_on": describe(node{"type": "array", "items": orVar(ref("dnsLabel"))}, "Depends on",
			"Services of this cell started first (and healthy first, if they have a health check)."),
	}), "Service", "One replicated program of the cell, run from a built or an existing image.")
	s["oneOf"] = []any{
		node{"required": []string{"build"}},
		node{"required": []string{"image"}},
	}
	s["allOf"] = []any{
		needsPort(node{
			"required": []string{"health"},
			"properties": node{"health": node{"anyOf": []any{
				node{"required": []string{"http"}},
				node{"required": []string{"tcp"}, "properties": node{"tcp": node{"const": true}}},
			}}},
		}),
		needsPort(node{
			"required": []string{"autoscale"},
			"properties": node{"autoscale": node{"anyOf": []any{
				node{"required": []string{"inflight"}},
				node{"required": []string{"rps"}},
			}}},
		}),
	}
	return s
}

func healthSchema() node {
	s := describe(object(node{
		"http": describe(orVar(node{"type": "string", "pattern": "^/"}), "HTTP probe",
			"Path of a GET on the service's port; 2xx and 3xx are healthy."),
		"tcp": describe(ref("boolean"), "TCP probe",
			"true: a connection to the service's port is healthy."),
		"exec": describe(command(1), "Exec probe",
			"A command run in the container; exit status 0 is healthy."),
		"interval": withDefault(describe(ref("duration"), "Interval",
			"Time between probes. Default 2s."), DefaultHealthInterval.String()),
		"timeout": withDefault(describe(ref("duration"), "Timeout",
			"Time allowed for one probe. Default 1s."), DefaultHealthTimeout.String()),
		"retries": withDefault(describe(integerAtLeast(1), "Retries",
			"Consecutive failures before the replica is unhealthy. Default 3."), DefaultHealthRetries),
		"start_period": withDefault(describe(node{"anyOf": []any{
			ref("duration"),
			node{"enum": []any{0, "0", "0s"}},
		}}, "Start period",
			"Failures are not counted for this long after a replica starts. Default 0s."), "0s"),
	}), "Health check", "Exactly one probe (http, tcp or exec) and its timing.")
	// Exactly one probe. tcp: false is no probe at all, so it may sit
	// beside another one.
	s["oneOf"] = []any{
		node{"required": []string{"http"}},
		node{"required": []string{"tcp"}, "properties": node{"tcp": node{"not": node{"enum": append([]any{false}, boolWords(false)...)}}}},
		node{"required": []string{"exec"}},
	}
	return s
}

func autoscaleSchema() node {
	s := describe(object(node{
		"min": withDefault(describe(integerAtLeast(0), "Minimum replicas",
			"Fewest replicas. Default 1."), 1),
		"max": describe(integerAtLeast(1), "Maximum replicas",
			"Most replicas; required, at least min."),
		"inflight": describe(numberAtLeast(0), "In-flight target",
			"Target in-flight requests per replica."),
		"rps": describe(numberAtLeast(0), "Requests per second target",
			"Target requests per second per replica."),
		"cpu": describe(numberAtLeast(0), "CPU target",
			"Target CPU percent of one core per replica."),
		"scale_down_after": withDefault(describe(ref("duration"), "Scale down after",
			"Stabilization window before scaling down. Default 30s."), DefaultScaleDownAfter.String()),
	}, "max"), "Autoscale", "Replica bounds and per-replica targets; at least one of inflight, rps and cpu.")
	s["anyOf"] = []any{
		node{"required": []string{"inflight"}},
		node{"required": []string{"rps"}},
		node{"required": []string{"cpu"}},
	}
	return s
}

func accessLogSchema() node {
	to := orVar(node{"enum": []any{AccessLogFile, AccessLogStdout, AccessLogOff}})
	return describe(node{"oneOf": []any{
		to,
		object(node{
			"to": withDefault(describe(to, "Destination",
				"file (the default): rotated files on a volume of the gateway, read with `orchestro logs CELL/gateway`; stdout: the gateway container's output, through the engine's log driver, which costs the engine about a sixth of the gateway's CPU again under load; off: no access log."), AccessLogFile),
			"sample": withDefault(describe(orVar(node{"type": "number", "exclusiveMinimum": 0, "maximum": 1}), "Sample",
				"The fraction of requests logged, for very busy cells: 0.1 logs one in ten. Failed requests (5xx answers, or none) are always logged. Default 1."), 1),
			"max_size": withDefault(describe(node{"anyOf": []any{
				node{"type": "integer", "minimum": minAccessLogMaxSize},
				node{"type": "string", "pattern": "^[0-9.]+ ?[kKmMgG]?i?[bB]?$"},
			}}, "Max size", "Size at which the file is rotated, for example 10M. Default 10MiB."), "10MiB"),
			"max_files": withDefault(describe(orVar(node{"type": "integer", "minimum": 1, "maximum": maxAccessLogFiles}), "Max files",
				"How many files are kept, the one being written included. Default 5."), DefaultAccessLogMaxFiles),
		}),
	}}, "Access log", "Where the gateway writes its access log, one JSON line per request: file (default), stdout or off, or a mapping that also sets sampling and rotation.")
}

func outlierSchema() node {
	return describe(object(node{
		"consecutive_5xx": withDefault(describe(integerAtLeast(0), "Consecutive 5xx",
			"How many 5xx answers in a row eject a replica. 0 (the default): 5xx answers never eject."), DefaultConsecutive5xx),
		"base_ejection": withDefault(describe(ref("duration"), "Base ejection",
			"Length of a replica's first ejection, doubling with each further ejection in a streak, up to 5m. Default 30s."), DefaultBaseEjection.String()),
		"max_ejection_percent": withDefault(describe(orVar(node{"type": "integer", "minimum": 0, "maximum": 100}), "Max ejection percent",
			"The most of a service's replicas, in percent, that may be ejected at once; the last available replica never is. Default 50."), DefaultMaxEjectionPercent),
	}), "Outlier ejection", "When the gateway ejects a replica on the strength of its answers (passive health checking), and for how long.")
}
