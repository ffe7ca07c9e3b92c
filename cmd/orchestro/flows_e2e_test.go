package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// The flow scenarios of TestGatewayDemo run the demo's checkout cell, whose
// gateway runs the place-order flow over the store services. What the
// services did is always read from their own state (through the routes the
// cell declares for that), never from orchestro's answer alone.

// flowOrder is a unique order id for one scenario.
func flowOrder(prefix string) string { return prefix + "-" + gwRandHex(4) }

// checkout sends one execution of the place-order flow.
func checkout(t *testing.T, p *project, order string, amount float64, hdr http.Header) (int, http.Header, map[string]any) {
	t.Helper()
	body := fmt.Sprintf(`{"items":[{"sku":"book","qty":1}],"amount":%v}`, amount)
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr.Set("Content-Type", "application/json")
	status, h, raw, err := gwSend(http.MethodPost, p.url("CHECKOUT_PORT")+"/checkout/"+order, hdr, strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST /checkout/%s: %v", order, err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST /checkout/%s answered %d with a body that is not JSON: %v\n%s", order, status, err, raw)
	}
	return status, h, out
}

// storeState is what the checkout cell's services hold.
type storeState struct {
	reservations map[string]int      // order → live reservations
	charges      map[string][]string // order → status of each charge
}

func readStore(t *testing.T, p *project) storeState {
	t.Helper()
	st := storeState{reservations: map[string]int{}, charges: map[string][]string{}}
	var inv struct {
		Reservations []struct{ Order string } `json:"reservations"`
	}
	storeGet(t, p, "/inventory/reservations", &inv)
	for _, r := range inv.Reservations {
		st.reservations[r.Order]++
	}
	var pay struct {
		Charges []struct{ Order, Status string } `json:"charges"`
	}
	storeGet(t, p, "/payments/charges", &pay)
	for _, c := range pay.Charges {
		st.charges[c.Order] = append(st.charges[c.Order], c.Status)
	}
	return st
}

func storeGet(t *testing.T, p *project, path string, v any) {
	t.Helper()
	status, _, body, err := gwSend(http.MethodGet, p.url("CHECKOUT_PORT")+path, nil, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s = %d, %v:\n%s", path, status, err, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// armFault makes the next count requests to a store service fail with
// status or wait for delay.
func armFault(t *testing.T, p *project, service, fault string) {
	t.Helper()
	status, _, body, err := gwSend(http.MethodPost, p.url("CHECKOUT_PORT")+"/"+service+"/faults", nil, strings.NewReader(fault))
	if err != nil || status != http.StatusOK {
		t.Fatalf("arm %s on %s = %d, %v:\n%s", fault, service, status, err, body)
	}
	t.Cleanup(func() {
		_, _, _, _ = gwSend(http.MethodDelete, p.url("CHECKOUT_PORT")+"/"+service+"/faults", nil, nil)
	})
}

// testFlowCheckout: a checkout over three services, and a fourth in the
// users cell, answers 201 with the templated body, and the services hold
// what it says.
func testFlowCheckout(t *testing.T, _ *client.Client, p *project) {
	order := flowOrder("ok")
	status, h, body := checkout(t, p, order, 42.5, http.Header{"X-User": {"ada"}})
	if status != http.StatusCreated {
		t.Fatalf("checkout answered %d, want 201: %v", status, body)
	}
	if got := h.Get("Location"); got != "/orders/"+order {
		t.Errorf("Location %q, want /orders/%s", got, order)
	}
	if h.Get("X-Orchestro-Flow-Id") == "" || h.Get("X-Orchestro-Compensated") != "" {
		t.Errorf("flow headers: %v", h)
	}
	res, _ := body["reservation"].(string)
	ch, _ := body["charge"].(string)
	servedBy, _ := body["served_by"].(string)
	if body["order"] != order || body["amount"] != 42.5 || !strings.HasPrefix(res, "res-") || !strings.HasPrefix(ch, "ch-") ||
		!strings.HasPrefix(servedBy, p.name+"-users-accounts-") {
		t.Errorf("body %v", body)
	}
	st := readStore(t, p)
	if st.reservations[order] != 1 || fmt.Sprint(st.charges[order]) != "[captured]" {
		t.Errorf("the services hold %d reservations and charges %v for %s, want 1 and [captured]", st.reservations[order], st.charges[order], order)
	}
}

// testFlowDeclined: a declined payment answers 402 with the declared body,
// and the reservation made before it is already released when the answer
// arrives.
func testFlowDeclined(t *testing.T, _ *client.Client, p *project) {
	order := flowOrder("declined")
	status, h, body := checkout(t, p, order, 5000, nil)
	if status != http.StatusPaymentRequired {
		t.Fatalf("checkout answered %d, want 402: %v", status, body)
	}
	if want := fmt.Sprintf("map[amount:5000 error:payment_declined order:%s]", order); fmt.Sprint(body) != want {
		t.Errorf("body %v, want %s", body, want)
	}
	if h.Get("X-Orchestro-Compensated") != "true" {
		t.Errorf("X-Orchestro-Compensated %q, want true", h.Get("X-Orchestro-Compensated"))
	}
	// Read at once: compensation is awaited, not fired and forgotten.
	st := readStore(t, p)
	if st.reservations[order] != 0 || len(st.charges[order]) != 0 {
		t.Errorf("after the 402 the services hold %d reservations and charges %v for %s, want none", st.reservations[order], st.charges[order], order)
	}
}

// testFlowTransient: a transient 503 of the charge is retried and the
// execution succeeds, with exactly one charge.
func testFlowTransient(t *testing.T, _ *client.Client, p *project) {
	armFault(t, p, "payments", `{"status": 503, "count": 1}`)
	order := flowOrder("transient")
	status, h, body := checkout(t, p, order, 10, nil)
	if status != http.StatusCreated {
		t.Fatalf("checkout answered %d, want 201 after a retry: %v", status, body)
	}
	if st := readStore(t, p); fmt.Sprint(st.charges[order]) != "[captured]" {
		t.Errorf("charges %v for %s, want one captured", st.charges[order], order)
	}
	id := h.Get("X-Orchestro-Flow-Id")
	line := flowLogLine(t, p, id)
	for _, s := range line.Steps {
		if s.ID == "charge" && (s.Tries != 2 || s.Status != 201) {
			t.Errorf("the access log says charge took %d tries ending %d, want 2 ending 201", s.Tries, s.Status)
		}
	}
}

// flowLine is the access-log line of a flow execution.
type flowLine struct {
	FlowID  string `json:"flow_id"`
	Outcome string `json:"outcome"`
	Steps   []struct {
		ID     string `json:"id"`
		Status int    `json:"status"`
		Tries  int    `json:"tries"`
	} `json:"steps"`
}

// flowLogLine finds the access-log line of one execution.
func flowLogLine(t *testing.T, p *project, id string) flowLine {
	t.Helper()
	var line flowLine
	_, ok, why := eventually(10*time.Second, 200*time.Millisecond, func() (bool, string) {
		stdout, stderr, code := p.run(t, "logs", "checkout/gateway")
		if code != 0 {
			return false, fmt.Sprintf("logs checkout/gateway exited %d: %s", code, stderr)
		}
		for _, l := range strings.Split(stdout, "\n") {
			if _, text, ok := strings.Cut(l, "│ "); ok && strings.Contains(text, `"flow_id":"`+id+`"`) {
				return json.Unmarshal([]byte(text), &line) == nil, "the line is not JSON: " + text
			}
		}
		return false, "no access-log line for execution " + id
	})
	if !ok {
		t.Fatal(why)
	}
	return line
}

// testFlowDeadline: a charge that outlasts the flow's deadline gives 504,
// with the reservation released and the charge refunded by order before
// the answer.
func testFlowDeadline(t *testing.T, _ *client.Client, p *project) {
	// Both tries of the charge hang: the first is cut by its 5s timeout,
	// the second by the 8s deadline.
	armFault(t, p, "payments", `{"delay": "20s", "count": 2}`)
	order := flowOrder("slow")
	start := time.Now()
	status, h, body := checkout(t, p, order, 10, nil)
	took := time.Since(start)
	if status != http.StatusGatewayTimeout {
		t.Fatalf("checkout answered %d after %s, want 504: %v", status, took, body)
	}
	t.Logf("504 after %s", took.Round(time.Millisecond))
	if h.Get("X-Orchestro-Compensated") != "true" || body["type"] != "urn:orchestro:problem:flow-deadline" || body["step"] != "charge" {
		t.Errorf("answer %v %v", h, body)
	}
	if got := fmt.Sprint(body["compensations"]); got != "[map[outcome:done step:charge] map[outcome:done step:reserve]]" {
		t.Errorf("compensations %s", got)
	}
	if st := readStore(t, p); st.reservations[order] != 0 || strings.Contains(fmt.Sprint(st.charges[order]), "captured") {
		t.Errorf("after the 504 the services hold %d reservations and charges %v for %s", st.reservations[order], st.charges[order], order)
	}
}

// testFlowConcurrent: 500 executions at once, one in five declined, leave
// the services consistent: every order answered 201 has its reservation
// and exactly one captured charge, every other order neither.
func testFlowConcurrent(t *testing.T, _ *client.Client, p *project) {
	const n = 500
	prefix := flowOrder("many")
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			amount := 10 + i%7
			if i%5 == 0 {
				amount = 5000
			}
			body := fmt.Sprintf(`{"items":[{"sku":"pen","qty":1}],"amount":%d}`, amount)
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, fmt.Sprintf("%s/checkout/%s-%d", p.url("CHECKOUT_PORT"), prefix, i), bytes.NewBufferString(body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Errorf("execution %d: %v", i, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait()
	t.Logf("%d executions in %s", n, time.Since(start).Round(time.Millisecond))

	st := readStore(t, p)
	counts := map[int]int{}
	for i, status := range statuses {
		counts[status]++
		order := fmt.Sprintf("%s-%d", prefix, i)
		captured := strings.Count(fmt.Sprint(st.charges[order]), "captured")
		switch {
		case len(st.charges[order]) > 1:
			t.Errorf("order %s was charged %d times: %v", order, len(st.charges[order]), st.charges[order])
		case status == http.StatusCreated && (st.reservations[order] != 1 || captured != 1):
			t.Errorf("order %s answered 201 but holds %d reservations and charges %v", order, st.reservations[order], st.charges[order])
		case status != http.StatusCreated && (st.reservations[order] != 0 || captured != 0):
			t.Errorf("order %s answered %d but holds %d reservations and charges %v", order, status, st.reservations[order], st.charges[order])
		case i%5 == 0 && status != http.StatusPaymentRequired:
			t.Errorf("order %s (declined) answered %d, want 402", order, status)
		}
	}
	t.Logf("answers: %v", counts)
	if counts[http.StatusCreated] != n*4/5 {
		t.Errorf("%d executions succeeded, want %d: %v", counts[http.StatusCreated], n*4/5, counts)
	}
}

// testFlowGatewayKilled: a checkout whose charge hangs is interrupted by
// a SIGKILL of the checkout gateway after the reservation was made. The
// gateway comes back, finds the execution unfinished in its journal and
// compensates it: the reservation is released (read in the inventory's
// own state), the execution is journaled as compensated after recovery,
// and a recovered event says so.
func testFlowGatewayKilled(t *testing.T, cli *client.Client, p *project) {
	ctx := context.Background()
	armFault(t, p, "payments", `{"delay": "20s", "count": 1}`)
	order := flowOrder("killed")
	done := make(chan error, 1)
	go func() {
		status, _, body, err := gwSend(http.MethodPost, p.url("CHECKOUT_PORT")+"/checkout/"+order,
			http.Header{"Content-Type": {"application/json"}}, strings.NewReader(`{"items":[{"sku":"book","qty":1}],"amount":10}`))
		if err == nil {
			err = fmt.Errorf("the execution answered %d before the gateway was killed: %s", status, body)
		}
		done <- err
	}()
	// The reservation is made, the charge hangs: kill the gateway.
	// Only the inventory is read: a request to payments would take the
	// armed delay itself.
	if _, ok, why := eventually(10*time.Second, 50*time.Millisecond, func() (bool, string) {
		var inv struct {
			Reservations []struct{ Order string } `json:"reservations"`
		}
		storeGet(t, p, "/inventory/reservations", &inv)
		for _, r := range inv.Reservations {
			if r.Order == order {
				return true, ""
			}
		}
		return false, "no reservation for " + order
	}); !ok {
		t.Fatal(why)
	}
	time.Sleep(300 * time.Millisecond) // the charge is on its way
	gw := gwGateway(t, cli, p, "checkout")
	if err := cli.ContainerKill(ctx, gw.ID, "SIGKILL"); err != nil {
		t.Fatalf("kill the checkout gateway: %v", err)
	}
	if err := <-done; err == nil {
		t.Fatal("the client of the killed execution got no error")
	} else {
		t.Logf("the client saw: %v", err)
	}

	// Back, the gateway releases the reservation on its own.
	took, ok, why := eventually(60*time.Second, 200*time.Millisecond, func() (bool, string) {
		status, _, body, err := gwSend(http.MethodGet, p.url("CHECKOUT_PORT")+"/inventory/reservations", nil, nil)
		if err != nil || status != http.StatusOK {
			return false, fmt.Sprintf("inventory: %d %v", status, err)
		}
		if strings.Contains(string(body), `"`+order+`"`) {
			return false, "the reservation of " + order + " is still held"
		}
		return true, ""
	})
	if !ok {
		t.Fatal(why)
	}
	t.Logf("reservation released %s after the kill", took.Round(time.Millisecond))
	if charges := readStore(t, p).charges[order]; strings.Contains(fmt.Sprint(charges), "captured") {
		t.Errorf("charges %v for %s after the recovery", charges, order)
	}

	// The journal holds the execution as compensated after recovery.
	var id string
	if _, ok, why := eventually(10*time.Second, 200*time.Millisecond, func() (bool, string) {
		stdout, stderr, code := p.run(t, "events", "--json")
		if code != 0 {
			return false, fmt.Sprintf("events exited %d: %s", code, stderr)
		}
		for _, line := range strings.Split(stdout, "\n") {
			var e struct{ Type, Flow, Message string }
			if json.Unmarshal([]byte(line), &e) == nil && e.Type == "recovered" && e.Flow == "place-order" {
				if f := strings.Fields(e.Message); len(f) > 1 && f[0] == "execution" {
					id = strings.TrimSuffix(f[1], ",")
					return true, ""
				}
			}
		}
		return false, "no recovered event"
	}); !ok {
		t.Fatal(why)
	}
	var x struct {
		State     string `json:"state"`
		Recovered bool   `json:"recovered"`
	}
	storeGet(t, p, "/_orchestro/executions/"+id, &x)
	if x.State != "compensated" || !x.Recovered {
		t.Errorf("execution %s: state %q, recovered %v; want compensated after recovery", id, x.State, x.Recovered)
	}

	// And so does the execution log of the command line.
	stdout, stderr, code := p.run(t, "flows", "runs", "checkout", "--failed", "--json")
	if code != 0 {
		t.Fatalf("flows runs --failed exited %d:\n%s", code, stderr)
	}
	var runs []struct {
		ID        string `json:"id"`
		State     string `json:"state"`
		Recovered bool   `json:"recovered"`
	}
	if err := json.Unmarshal([]byte(stdout), &runs); err != nil {
		t.Fatalf("flows runs --json: %v\n%s", err, stdout)
	}
	found := false
	for _, r := range runs {
		found = found || (r.ID == id && r.State == "compensated" && r.Recovered)
	}
	if !found {
		t.Errorf("flows runs --failed does not show %s compensated after recovery:\n%s", id, stdout)
	}
	if stdout, _, code := p.run(t, "flows", "show", id[:12]); code != 0 || !strings.Contains(stdout, "compensated") {
		t.Errorf("flows show %s exited %d:\n%s", id[:12], code, stdout)
	}
}

// testFlowConcurrentKill: 500 executions at once, one in five declined,
// and the checkout gateway SIGKILLed while they run. Once the gateway is
// back and has recovered what its journal held unfinished, the services
// are consistent: every live reservation has its captured charge, every
// captured charge its reservation, no order is charged twice, and every
// execution answered 201 kept both.
func testFlowConcurrentKill(t *testing.T, cli *client.Client, p *project) {
	const n = 500
	prefix := flowOrder("kill")
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	statuses := make([]int, n)
	var answered atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			amount := 10 + i%7
			if i%5 == 0 {
				amount = 5000
			}
			body := fmt.Sprintf(`{"items":[{"sku":"pen","qty":1}],"amount":%d}`, amount)
			resp, err := hc.Post(fmt.Sprintf("%s/checkout/%s-%d", p.url("CHECKOUT_PORT"), prefix, i), "application/json", strings.NewReader(body))
			if err != nil {
				return // cut by the kill: status 0
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
			answered.Add(1)
		})
	}
	// Kill in the middle: once a fifth of the executions have answered.
	if _, ok, why := eventually(30*time.Second, 5*time.Millisecond, func() (bool, string) {
		a := answered.Load()
		return a >= n/5, fmt.Sprintf("%d answered", a)
	}); !ok {
		t.Fatalf("before the kill: %s", why)
	}
	gw := gwGateway(t, cli, p, "checkout")
	if err := cli.ContainerKill(context.Background(), gw.ID, "SIGKILL"); err != nil {
		t.Fatalf("kill the checkout gateway: %v", err)
	}
	wg.Wait()
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	t.Logf("answers before and after the kill (0: cut): %v", counts)

	// Consistency is reached once the gateway has recovered: poll until
	// it holds, and report what is left if it never does.
	var problems []string
	took, ok, _ := eventually(90*time.Second, time.Second, func() (bool, string) {
		if _, status, err := get(p.url("CHECKOUT_PORT") + "/inventory/stock"); err != nil || status != 200 {
			return false, "gateway not back"
		}
		problems = problems[:0]
		st := readStore(t, p)
		for i := range n {
			order := fmt.Sprintf("%s-%d", prefix, i)
			captured := strings.Count(fmt.Sprint(st.charges[order]), "captured")
			held := st.reservations[order]
			switch {
			case len(st.charges[order]) > 1:
				problems = append(problems, fmt.Sprintf("%s charged %d times %v", order, len(st.charges[order]), st.charges[order]))
			case held != captured:
				problems = append(problems, fmt.Sprintf("%s holds %d reservations and %d captured charges (answered %d)", order, held, captured, statuses[i]))
			case statuses[i] == http.StatusCreated && held != 1:
				problems = append(problems, fmt.Sprintf("%s answered 201 but holds %d reservations", order, held))
			case i%5 == 0 && captured != 0:
				problems = append(problems, fmt.Sprintf("%s (declined) has a captured charge", order))
			}
		}
		return len(problems) == 0, ""
	})
	if !ok {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("… and %d more", len(problems)-20))
		}
		t.Fatalf("the services are not consistent 90s after the kill:\n%s", strings.Join(problems, "\n"))
	}
	t.Logf("consistent %s after the executions ended", took.Round(time.Millisecond))
}

// testFlowAsyncQueued: an asynchronous checkout submitted while payments
// is scaled to zero is answered 202, waits, survives a SIGKILL of the
// gateway while it waits, and completes once payments is scaled back.
func testFlowAsyncQueued(t *testing.T, cli *client.Client, p *project) {
	if _, stderr, code := p.run(t, "scale", "checkout/payments=0"); code != 0 {
		t.Fatalf("scale checkout/payments=0 exited %d:\n%s", code, stderr)
	}
	t.Cleanup(func() { p.run(t, "scale", "checkout/payments=2") })
	if _, ok, why := eventually(30*time.Second, 200*time.Millisecond, func() (bool, string) {
		s, _ := p.ps(t).service("checkout", "payments")
		return s.Desired == 0 && len(s.Replicas) == 0, formatCount(s)
	}); !ok {
		t.Fatalf("payments did not scale to zero: %s", why)
	}

	order := flowOrder("queued")
	status, h, body, err := gwSend(http.MethodPost, p.url("CHECKOUT_PORT")+"/checkout/"+order,
		http.Header{"Content-Type": {"application/json"}, "Prefer": {"respond-async"}},
		strings.NewReader(`{"items":[{"sku":"book","qty":1}],"amount":12}`))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("async checkout answered %d, %v:\n%s", status, err, body)
	}
	loc := h.Get("Location")
	var x struct {
		State    string `json:"state"`
		Response *struct {
			Status int            `json:"status"`
			Body   map[string]any `json:"body"`
		} `json:"response"`
		Recovered bool `json:"recovered"`
	}
	time.Sleep(time.Second)
	storeGet(t, p, loc, &x)
	if x.State != "running" {
		t.Fatalf("with payments at zero the execution is %q, want running", x.State)
	}

	gw := gwGateway(t, cli, p, "checkout")
	if err := cli.ContainerKill(context.Background(), gw.ID, "SIGKILL"); err != nil {
		t.Fatalf("kill the checkout gateway: %v", err)
	}
	if _, ok, why := eventually(30*time.Second, 200*time.Millisecond, func() (bool, string) {
		status, _, _, err := gwSend(http.MethodGet, p.url("CHECKOUT_PORT")+loc, nil, nil)
		return err == nil && status == http.StatusOK, fmt.Sprintf("%d %v", status, err)
	}); !ok {
		t.Fatalf("the gateway did not come back: %s", why)
	}
	storeGet(t, p, loc, &x)
	if x.State != "running" {
		t.Fatalf("after the kill the execution is %q, want running (resumed, still waiting)", x.State)
	}

	if _, stderr, code := p.run(t, "scale", "checkout/payments=2"); code != 0 {
		t.Fatalf("scale checkout/payments=2 exited %d:\n%s", code, stderr)
	}
	took, ok, why := eventually(60*time.Second, 500*time.Millisecond, func() (bool, string) {
		storeGet(t, p, loc+"?wait=5s", &x)
		return x.State == "succeeded", "state " + x.State
	})
	if !ok {
		t.Fatalf("the queued execution did not complete: %s", why)
	}
	t.Logf("completed %s after payments was scaled back", took.Round(time.Millisecond))
	if x.Response == nil || x.Response.Status != http.StatusCreated || x.Response.Body["order"] != order || !x.Recovered {
		t.Errorf("execution answer %+v, recovered %v", x.Response, x.Recovered)
	}
	if st := readStore(t, p); fmt.Sprint(st.charges[order]) != "[captured]" || st.reservations[order] != 1 {
		t.Errorf("the services hold %d reservations and charges %v for %s, want 1 and one captured", st.reservations[order], st.charges[order], order)
	}
}
