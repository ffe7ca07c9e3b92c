package cellspec

import "fmt"

// The JSON Schema of flows: (see Schema). The schema checks shapes, keys
// and ranges; the loader alone checks what spans fields: the names an
// expression may use, step ids, call targets and route collisions.

const (
	// flowRoutePattern is "METHOD /path": an upper-case HTTP token, white
	// space, then a plain path.
	flowRoutePattern = "^[!#$%&'*+.^_`|~0-9A-Z-]+\\s+/[^?#\\s]*$"

	// flowCallPattern is "METHOD TARGET /path...": the path may hold
	// expressions, and so spaces.
	flowCallPattern = "^[!#$%&'*+.^_`|~0-9A-Z-]+\\s+\\S+\\s+/"

	// stepIDPattern is exprNamePattern: an id is a name in expressions.
	stepIDPattern = `^[a-z][a-z0-9_]*$`

	// statusKeyPattern is an on_status key: a status code, 100-599.
	statusKeyPattern = `^[1-5][0-9][0-9]$`

	// headerNamePattern is an HTTP token.
	headerNamePattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"

	// singleExpressionPattern is a when condition: one ${{ expression }}.
	singleExpressionPattern = `^\$\{\{.*\}\}$`
)

const flowValueDescription = "Any YAML value: a string, number, boolean, null, list or mapping, sent as JSON. Strings may hold ${{ expressions }}: a string that is exactly one expression takes the expression's type; inside longer text, each is rendered as text."

// flowSchemaDefs returns the $defs of flows.
func flowSchemaDefs() node {
	status := func(title, description string) node {
		return describe(orVar(node{"type": "integer", "minimum": minStatus, "maximum": maxStatus}), title, description)
	}
	templates := func(title, description string) node {
		return describe(node{
			"type":                 "object",
			"propertyNames":        node{"pattern": headerNamePattern},
			"additionalProperties": node{"type": []any{"string", "number", "boolean", "null"}},
		}, title, description)
	}
	value := func(title, description string) node {
		return describe(node{}, title, description+" "+flowValueDescription)
	}
	requestProps := func(who string) node {
		return node{
			"call": describe(orVar(node{"type": "string", "pattern": flowCallPattern}), "Call",
				"METHOD TARGET PATH, for example POST orders /validate. TARGET is a service of this cell that has a port, or cell:<name> for a cell listed in uses. PATH starts with / and may hold ${{ expressions }}."),
			"headers": templates("Headers",
				"Request headers of "+who+"; values may hold ${{ expressions }}."),
			"query": templates("Query",
				"Query parameters of "+who+"; values may hold ${{ expressions }}."),
			"body": value("Body", "The request body of "+who+", sent as JSON."),
		}
	}

	step := requestProps("the step")
	step["id"] = describe(node{"type": "string", "pattern": stepIDPattern}, "Step id",
		"Unique in the flow; later steps read the step's answer as <id>.status, <id>.body and so on. Lower-case letters, digits and '_', starting with a letter; not input, path or flow.")
	step["timeout"] = describe(ref("duration"), "Timeout",
		"Bound on each attempt. Default: defaults.timeout, else 30s. The flow's deadline wins when sooner.")
	step["retry"] = describe(ref("flowRetry"), "Retry",
		"How often and when the call is tried again; each key not written comes from defaults.retry, else from the built-in retry.")
	step["expect"] = describe(node{"type": "array", "items": ref("statusCode")}, "Expected statuses",
		"The statuses that are success. Default: any 2xx.")
	step["on_status"] = describe(node{
		"type":                 "object",
		"propertyNames":        node{"pattern": statusKeyPattern},
		"additionalProperties": ref("flowOnStatus"),
	}, "On status", "What an answer with a given status does to the execution.")
	step["optional"] = withDefault(describe(ref("boolean"), "Optional",
		"An optional step never fails the execution and is never rolled back for its own failure; its fallback becomes its body."), false)
	step["fallback"] = value("Fallback", "The body of an optional step that failed.")
	step["when"] = describe(node{"anyOf": []any{
		node{"type": "boolean"},
		node{"type": "string", "pattern": singleExpressionPattern},
	}}, "When", "true, false or one ${{ expression }} evaluated before the step; false skips it (its ok is false, its body null, and it is never compensated). It may use earlier steps.")
	step["compensate"] = describe(ref("flowCompensate"), "Compensate",
		"The call that undoes this step when a later required step fails or the deadline passes. It may use the step's own answer.")

	compensate := requestProps("the compensation")
	compensate["timeout"] = describe(ref("duration"), "Timeout",
		"Bound on each attempt. Default: the step's timeout.")
	compensate["retry"] = describe(ref("flowRetry"), "Retry",
		fmt.Sprintf("Each key not written comes from the step's retry, except attempts: default the larger of the step's attempts and %d.", DefaultCompensateAttempts))

	return node{
		"statusCode": status("Status code", "An HTTP status code, 100-599."),
		"flow": describe(object(node{
			"name": describe(orVar(ref("dnsLabel")), "Flow name",
				"Unique in the cell: a lower-case DNS label. It names the flow in metrics, logs and events."),
			"route": describe(orVar(node{"type": "string", "pattern": flowRoutePattern}), "Route",
				"METHOD /path the flow answers on the gateway port, for example POST /checkout/{order}. A {name} segment captures one path segment as path.<name>."),
			"deadline": withDefault(describe(ref("duration"), "Deadline",
				"Bound on the whole execution; past it the gateway compensates and answers 504. Default 30s."), (DefaultFlowDeadline).String()),
			"defaults": describe(object(node{
				"timeout": withDefault(describe(ref("duration"), "Timeout",
					"Bound on each attempt of a step that does not set one. Default 30s."), DefaultStepTimeout.String()),
				"retry": describe(ref("flowRetry"), "Retry",
					"The retry of every step, key by key, unless the step says otherwise."),
			}), "Defaults", "Applied to every step unless it says otherwise."),
			"steps": describe(node{"type": "array", "minItems": 1, "items": ref("flowStepEntry")}, "Steps",
				"Run in the order written. An entry is a step, or a parallel group whose members start together."),
			"response": describe(ref("flowAnswer"), "Response",
				"The answer of a successful execution. Without it, the answer is 200 with an object of every step's body by id."),
			"mode": withDefault(describe(node{"enum": []any{FlowSync, FlowAsync}}, "Mode",
				"sync holds the client's request until the execution ends; async answers 202 Accepted at once with Location: /_orchestro/executions/<id> and runs the execution durably. A client asks any flow for async with Prefer: respond-async. Default sync."), FlowSync),
			"async_deadline": withDefault(describe(ref("duration"), "Async deadline",
				"Bound on an asynchronous execution; deadline bounds synchronous ones. Default 24h."), DefaultAsyncDeadline.String()),
			"max_inflight": withDefault(describe(integerAtLeast(1), "Max in flight",
				"Executions of this flow running at once; beyond it the gateway answers 503 with Retry-After. Default 1000."), DefaultFlowMaxInflight),
			"max_body": withDefault(describe(node{"anyOf": []any{
				node{"type": "integer", "minimum": 1},
				node{"type": "string", "pattern": memoryPattern},
				ref("interpolation"),
			}}, "Max body",
				"Largest body kept of the client's request and of each step's answer, in bytes or with a unit: 512K, 1MiB. A larger one fails the step. Default 1MiB."), "1MiB"),
		}, "name", "route", "steps"), "Flow", "A route of the cell gateway whose answer is composed from calls to several services."),
		"flowStepEntry": describe(node{"oneOf": []any{ref("flowGroup"), ref("flowStep")}}, "Step or group",
			"A step, or {parallel: [steps]}."),
		"flowGroup": describe(object(node{
			parallelKey: describe(node{"type": "array", "minItems": 1, "items": ref("flowStep")}, "Parallel",
				"Steps started together; the group ends when all of them have. Groups do not nest."),
		}, parallelKey), "Parallel group", "Steps started together. A group has no other key."),
		"flowStep": describe(object(step, "id", "call"), "Step", "One call of the flow."),
		"flowRetry": describe(object(node{
			"attempts": withDefault(describe(integerAtLeast(1), "Attempts",
				"Tries in all, the first included. Default 1."), 1),
			"backoff": withDefault(describe(ref("duration"), "Backoff",
				"The first wait between tries; it doubles each time up to max_backoff. Default 100ms."), (DefaultRetryBackoff).String()),
			"max_backoff": withDefault(describe(ref("duration"), "Max backoff",
				"The longest wait between tries, at least backoff. Default 2s."), (DefaultRetryMaxBackoff).String()),
			"jitter": withDefault(describe(ref("boolean"), "Jitter",
				"Draw each wait at random between half of it and all of it. Default true."), true),
			"retry_on": withDefault(describe(node{"type": "array", "items": node{"anyOf": []any{
				node{"enum": []any{RetryOnConnect, RetryOnTimeout}},
				ref("statusCode"),
			}}}, "Retry on",
				"What is retried: connect (no connection), timeout (no answer in time) and status codes. Default [connect, timeout, 502, 503, 504]."),
				[]any{RetryOnConnect, RetryOnTimeout, 502, 503, 504}),
		}), "Retry", "How often and when a call is tried again. A request that may have reached the service is retried only when it is idempotent or carries an Idempotency-Key, which every step call does."),
		"flowOnStatus": describe(object(node{
			"fail": describe(ref("flowAnswer"), "Fail",
				"End the execution, after compensation, with this answer. Its status defaults to the status it answers."),
		}, "fail"), "On status", "What an answer with this status does."),
		"flowAnswer": describe(object(node{
			"status": status("Status", "The answer's status. Default 200 for a response, the status answered for an on_status fail."),
			"headers": templates("Headers",
				"Headers of the answer; values may hold ${{ expressions }}."),
			"body": value("Body", "The answer's body, sent as JSON. Its expressions may use every step."),
		}), "Answer", "An answer the flow sends its client."),
		"flowCompensate": describe(object(compensate, "call"), "Compensate", "The call that undoes a completed step."),
	}
}
