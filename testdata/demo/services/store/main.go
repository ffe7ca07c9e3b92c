// Command store is the demo project's stateful service for flows (sagas): one
// program that plays an inventory, a payments or a notify service, chosen by
// SERVICE_KIND, so a checkout flow can reserve stock, charge, send an email
// and compensate the completed steps when a later one fails.
//
// State lives in one JSON file per kind in DATA_DIR ("inventory.json",
// "payments.json", "notify.json"). Several replicas of the same kind may share
// that directory (one named volume): every read-modify-write holds an
// exclusive flock on "<kind>.lock" in DATA_DIR, reads the file, changes it,
// writes a temporary file and renames it over the old one, then unlocks.
// Nothing is fsynced: the state survives a killed process, not a power cut.
//
// Behaviour with SERVICE_KIND=inventory (stock per SKU, from STOCK on the very
// first start, when no state file exists yet):
//
//	POST   /reservations       {"order": "o1", "items": [{"sku": "book", "qty": 2}]}
//	                           201 {"id": "res-1", "order", "items"} and the
//	                           stock is taken; 409 {"error": "out_of_stock",
//	                           "sku", "requested", "available"} and nothing is
//	                           taken when any SKU falls short (an unknown SKU
//	                           has none); 400 on a bad body
//	DELETE /reservations/{id}  204 and the stock is given back; 404 when the
//	                           id is unknown or already released
//	GET    /reservations       200 {"reservations": [...]}, every live one
//	GET    /stock              200 {"book": 998, ...}
//
// With SERVICE_KIND=payments:
//
//	POST /charges              {"order": "o1", "amount": 123.5}
//	                           201 {"id": "ch-1", "order", "amount", "status":
//	                           "captured"} when amount <= DECLINE_ABOVE, else
//	                           402 {"error": "payment_declined", "order",
//	                           "amount"} and no charge is kept; 400 on a bad body
//	                           409 {"error": "order_cancelled"} when the order
//	                           was refunded with POST /refunds
//	POST /charges/{id}/refund  200 with the charge, status "refunded" (again
//	                           is fine: nothing changes); 404 when unknown
//	POST /refunds              {"order": "o1"} refunds every charge of the
//	                           order and cancels it, so a charge for it that
//	                           arrives later gets 409: the compensation of a
//	                           charge whose answer never came. 200 {"order",
//	                           "refunded": [...]}; 404 when it had no charge
//	GET  /charges              200 {"charges": [...]}, refunded ones included
//
// With SERVICE_KIND=notify:
//
//	POST /emails               any JSON object, usually {"order": "o1", ...}
//	                           202 {"id": "em-1"}; the email is only recorded
//	GET  /emails               200 {"emails": [{"id", "order", "body"}, ...]}
//
// Idempotency: a POST /reservations, /charges or /emails with an
// Idempotency-Key header that was already used with a successful answer gets
// that same answer again (same status, same id, header Idempotent-Replayed:
// true) and changes nothing, whatever its body; a replayed charge shows its
// current status, a replayed reservation is returned even after its release
// (it is not taken again). Failed attempts (400, 402, 409) are not remembered,
// so a retry is judged afresh. Keys are remembered forever.
//
// Every kind also serves:
//
//	GET    /healthz  200 "ok", never faulted
//	POST   /faults   {"status": 503, "count": 2} the next 2 requests answer
//	                 503 {"error": "injected_fault", "status": 503} without
//	                 doing anything; {"delay": "3s", "count": 1} the next
//	                 request waits 3s (at most 30s) and then proceeds, or
//	                 stops without doing anything when its client leaves
//	                 (a shutdown cuts the wait short and lets it proceed);
//	                 both together wait, then fail. count defaults to 1.
//	                 Faults queue up: each POST appends a rule, requests use
//	                 up the oldest rule first. Answers 200 {"faults": [...]}
//	GET    /faults   200 {"faults": [...]}, the rules still armed
//	DELETE /faults   204, every rule disarmed
//
// Faults apply to every request but /healthz and /faults, unknown paths
// included, and are shared by the replicas through "<kind>-faults.json" in
// DATA_DIR (same lock), so a test can arm them through any replica.
//
// Configuration comes from the environment only: SERVICE_KIND (required:
// inventory, payments or notify), SERVICE_NAME (default the kind), PORT
// (default 8080), DATA_DIR (default /data, created when missing), STOCK for
// inventory (for example "book=1000,pen=5000"; ignored once the state file
// exists) and DECLINE_ABOVE for payments (default 1000). A bad configuration
// exits with status 2. The program logs one plain-text line per request to
// stdout (method, path, status, duration, the Idempotency-Key when present,
// the fault injected if any; successful health checks are not logged) and
// shuts down gracefully on SIGTERM or SIGINT.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"math"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// maxDelay bounds an injected delay so a typo cannot pin a replica forever.
	maxDelay = 30 * time.Second
	// shutdownGrace bounds how long in-flight requests may finish after SIGTERM.
	shutdownGrace = 10 * time.Second
	// maxBody bounds every request body.
	maxBody = 1 << 20
	// maxQty bounds one item's quantity, so sums cannot overflow.
	maxQty = 1_000_000_000
)

func main() {
	logger := log.New(os.Stdout, "", 0)
	fail := func(format string, args ...any) {
		logger.Printf("store: "+format, args...)
		os.Exit(2)
	}

	kind := os.Getenv("SERVICE_KIND")
	name := envOr("SERVICE_NAME", kind)
	port := envOr("PORT", "8080")
	dir := envOr("DATA_DIR", "/data")

	if kind != "inventory" && kind != "payments" && kind != "notify" {
		fail("SERVICE_KIND %q: want inventory, payments or notify", kind)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail("DATA_DIR: %v", err)
	}
	st, err := openStore(dir, kind)
	if err != nil {
		fail("%v", err)
	}
	s := &server{kind: kind, store: st, stopping: make(chan struct{})}

	mux := http.NewServeMux()
	s.common(mux)
	switch kind {
	case "inventory":
		stock, err := parseStock(os.Getenv("STOCK"))
		if err != nil {
			fail("STOCK: %v", err)
		}
		s.initialStock = stock
		// Create the state file now, so STOCK is read by whichever replica
		// starts first and never again.
		if err := update(s.store, s.store.statePath, s.newInventory, func(*inventoryState) (bool, error) {
			return true, nil
		}); err != nil {
			fail("%v", err)
		}
		s.inventory(mux)
	case "payments":
		limit := 1000.0
		if v := os.Getenv("DECLINE_ABOVE"); v != "" {
			limit, err = strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(limit) {
				fail("DECLINE_ABOVE %q: want a number", v)
			}
		}
		s.declineAbove = limit
		s.payments(mux)
	case "notify":
		s.notify(mux)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	srv := &http.Server{
		Addr:              ":" + port,
		Handler:           s.handle(logger, mux),
		ReadHeaderTimeout: 5 * time.Second,
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Printf("store: %s service %s listening on :%s, state in %s", kind, name, port, dir)

	select {
	case err := <-errc:
		logger.Printf("store: serve: %v", err)
		os.Exit(1)
	case <-ctx.Done():
	}

	logger.Printf("store: shutting down")
	// Requests waiting on an injected delay stop waiting and finish.
	close(s.stopping)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Printf("store: shutdown: %v", err)
	}
}

// server holds the replica's role and configuration.
type server struct {
	kind         string
	store        *store
	initialStock map[string]int64
	declineAbove float64
	// stopping is closed on shutdown, to cut injected delays short.
	stopping chan struct{}
}

// ---- shared state on disk ----

// store is the state directory of one kind. The in-process mutex makes the
// goroutines of this replica queue in Go rather than in the kernel; the flock
// on the lock file excludes the other replicas.
type store struct {
	mu         sync.Mutex
	lock       *os.File
	dir        string
	statePath  string
	faultsPath string
}

func openStore(dir, kind string) (*store, error) {
	lock, err := os.OpenFile(filepath.Join(dir, kind+".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &store{
		lock:       lock,
		dir:        dir,
		statePath:  filepath.Join(dir, kind+".json"),
		faultsPath: filepath.Join(dir, kind+"-faults.json"),
	}, nil
}

// locked runs fn while holding the exclusive lock.
func (s *store) locked(fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fd := int(s.lock.Fd())
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("lock %s: %w", s.lock.Name(), err)
		}
	}
	defer syscall.Flock(fd, syscall.LOCK_UN)
	return fn()
}

// update reads the JSON state in path (init() when the file does not exist),
// calls fn on it and, when fn reports a change, writes it back atomically, all
// under the lock. fn's error is returned as is and nothing is written.
func update[T any](s *store, path string, init func() *T, fn func(*T) (bool, error)) error {
	return s.locked(func() error {
		v, err := load(path, init)
		if err != nil {
			return err
		}
		changed, err := fn(v)
		if err != nil || !changed {
			return err
		}
		return s.save(path, v)
	})
}

// view calls fn on the state in path, under the lock, without writing.
func view[T any](s *store, path string, init func() *T, fn func(*T)) error {
	return update(s, path, init, func(v *T) (bool, error) {
		fn(v)
		return false, nil
	})
}

func load[T any](path string, init func() *T) (*T, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return init(), nil
	}
	if err != nil {
		return nil, err
	}
	// A fresh value, not init(): the file wins over the initial state.
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return v, nil
}

// save writes v to a temporary file beside path and renames it over path, so
// a reader never sees half a file.
func (s *store) save(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// ---- inventory ----

type item struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

type reservation struct {
	ID    string `json:"id"`
	Order string `json:"order"`
	Items []item `json:"items"`
}

type inventoryState struct {
	Next         int64                  `json:"next"`
	Stock        map[string]int64       `json:"stock"`
	Reservations []reservation          `json:"reservations"`
	Idempotency  map[string]reservation `json:"idempotency"`
}

func (s *server) newInventory() *inventoryState {
	return &inventoryState{
		Stock:        maps.Clone(s.initialStock),
		Reservations: []reservation{},
		Idempotency:  map[string]reservation{},
	}
}

func (s *server) inventory(mux *http.ServeMux) {
	route(mux, "/reservations", map[string]http.HandlerFunc{
		"GET":  s.listReservations,
		"POST": s.reserve,
	})
	route(mux, "/reservations/{id}", map[string]http.HandlerFunc{"DELETE": s.release})
	route(mux, "/stock", map[string]http.HandlerFunc{"GET": s.stock})
}

func (s *server) reserve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Order string `json:"order"`
		Items []item `json:"items"`
	}
	if !decode(w, r, &req) {
		return
	}
	switch {
	case req.Order == "":
		badRequest(w, `"order" is required`)
		return
	case len(req.Items) == 0:
		badRequest(w, `"items" must list at least one item`)
		return
	}
	for i, it := range req.Items {
		if it.SKU == "" {
			badRequest(w, fmt.Sprintf(`items[%d]: "sku" is required`, i))
			return
		}
		if it.Qty < 1 || it.Qty > maxQty {
			badRequest(w, fmt.Sprintf(`items[%d]: "qty" must be from 1 to %d`, i, maxQty))
			return
		}
	}
	key := r.Header.Get("Idempotency-Key")

	var (
		res      reservation
		replayed bool
		short    map[string]any
	)
	err := update(s.store, s.store.statePath, s.newInventory, func(st *inventoryState) (bool, error) {
		if prev, ok := st.Idempotency[key]; ok && key != "" {
			res, replayed = prev, true
			return false, nil
		}
		need := map[string]int64{}
		for _, it := range req.Items {
			need[it.SKU] += it.Qty
			if have := st.Stock[it.SKU]; have < need[it.SKU] {
				short = map[string]any{"error": "out_of_stock", "sku": it.SKU, "requested": need[it.SKU], "available": have}
				return false, nil
			}
		}
		for sku, n := range need {
			st.Stock[sku] -= n
		}
		st.Next++
		res = reservation{ID: fmt.Sprintf("res-%d", st.Next), Order: req.Order, Items: req.Items}
		st.Reservations = append(st.Reservations, res)
		if key != "" {
			st.Idempotency[key] = res
		}
		return true, nil
	})
	switch {
	case err != nil:
		internalError(w, err)
	case short != nil:
		writeJSON(w, http.StatusConflict, short)
	default:
		markReplayed(w, replayed)
		writeJSON(w, http.StatusCreated, res)
	}
}

func (s *server) release(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	found := false
	err := update(s.store, s.store.statePath, s.newInventory, func(st *inventoryState) (bool, error) {
		i := slices.IndexFunc(st.Reservations, func(res reservation) bool { return res.ID == id })
		if i < 0 {
			return false, nil
		}
		found = true
		for _, it := range st.Reservations[i].Items {
			st.Stock[it.SKU] += it.Qty
		}
		st.Reservations = slices.Delete(st.Reservations, i, i+1)
		return true, nil
	})
	switch {
	case err != nil:
		internalError(w, err)
	case !found:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not_found", "id": id})
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *server) listReservations(w http.ResponseWriter, r *http.Request) {
	var list []reservation
	err := view(s.store, s.store.statePath, s.newInventory, func(st *inventoryState) {
		list = st.Reservations
	})
	if err != nil {
		internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"reservations": nonNil(list)})
}

func (s *server) stock(w http.ResponseWriter, r *http.Request) {
	var stock map[string]int64
	err := view(s.store, s.store.statePath, s.newInventory, func(st *inventoryState) {
		stock = st.Stock
	})
	if err != nil {
		internalError(w, err)
		return
	}
	if stock == nil {
		stock = map[string]int64{}
	}
	writeJSON(w, http.StatusOK, stock)
}

// parseStock reads "book=1000,pen=5000".
func parseStock(v string) (map[string]int64, error) {
	stock := map[string]int64{}
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		sku, qty, ok := strings.Cut(part, "=")
		sku = strings.TrimSpace(sku)
		n, err := strconv.ParseInt(strings.TrimSpace(qty), 10, 64)
		if !ok || sku == "" || err != nil || n < 0 || n > maxQty {
			return nil, fmt.Errorf("%q: want sku=quantity, for example book=1000", part)
		}
		stock[sku] = n
	}
	return stock, nil
}

// ---- payments ----

type charge struct {
	ID     string  `json:"id"`
	Order  string  `json:"order"`
	Amount float64 `json:"amount"`
	Status string  `json:"status"`
}

type paymentsState struct {
	Next        int64             `json:"next"`
	Charges     []charge          `json:"charges"`
	Idempotency map[string]string `json:"idempotency"` // key → charge id
	// Cancelled holds the orders refunded with POST /refunds: a charge
	// for one of them that arrives later is refused.
	Cancelled map[string]bool `json:"cancelled"`
}

func newPayments() *paymentsState {
	return &paymentsState{Charges: []charge{}, Idempotency: map[string]string{}, Cancelled: map[string]bool{}}
}

func (s *server) payments(mux *http.ServeMux) {
	route(mux, "/charges", map[string]http.HandlerFunc{
		"GET":  s.listCharges,
		"POST": s.charge,
	})
	route(mux, "/charges/{id}/refund", map[string]http.HandlerFunc{"POST": s.refund})
	route(mux, "/refunds", map[string]http.HandlerFunc{"POST": s.refundOrder})
}

func (s *server) charge(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Order  string   `json:"order"`
		Amount *float64 `json:"amount"`
	}
	if !decode(w, r, &req) {
		return
	}
	switch {
	case req.Order == "":
		badRequest(w, `"order" is required`)
		return
	case req.Amount == nil:
		badRequest(w, `"amount" is required`)
		return
	case *req.Amount < 0:
		badRequest(w, `"amount" must not be negative`)
		return
	}
	key := r.Header.Get("Idempotency-Key")

	var (
		ch                            charge
		replayed, declined, cancelled bool
	)
	err := update(s.store, s.store.statePath, newPayments, func(st *paymentsState) (bool, error) {
		if id, ok := st.Idempotency[key]; ok && key != "" {
			if i := slices.IndexFunc(st.Charges, func(c charge) bool { return c.ID == id }); i >= 0 {
				ch, replayed = st.Charges[i], true
				return false, nil
			}
		}
		if st.Cancelled[req.Order] {
			cancelled = true
			return false, nil
		}
		if *req.Amount > s.declineAbove {
			declined = true
			return false, nil
		}
		st.Next++
		ch = charge{ID: fmt.Sprintf("ch-%d", st.Next), Order: req.Order, Amount: *req.Amount, Status: "captured"}
		st.Charges = append(st.Charges, ch)
		if key != "" {
			st.Idempotency[key] = ch.ID
		}
		return true, nil
	})
	switch {
	case err != nil:
		internalError(w, err)
	case cancelled:
		writeJSON(w, http.StatusConflict, map[string]any{"error": "order_cancelled", "order": req.Order})
	case declined:
		writeJSON(w, http.StatusPaymentRequired, map[string]any{"error": "payment_declined", "order": req.Order, "amount": *req.Amount})
	default:
		markReplayed(w, replayed)
		writeJSON(w, http.StatusCreated, ch)
	}
}

// refundOrder refunds every charge of an order and cancels the order, so
// that a charge for it still on its way is refused when it arrives: the
// compensation of a charge whose answer never came back.
func (s *server) refundOrder(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Order string `json:"order"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Order == "" {
		badRequest(w, `"order" is required`)
		return
	}
	var refunded []charge
	err := update(s.store, s.store.statePath, newPayments, func(st *paymentsState) (bool, error) {
		for i := range st.Charges {
			if c := &st.Charges[i]; c.Order == req.Order {
				c.Status = "refunded"
				refunded = append(refunded, *c)
			}
		}
		if st.Cancelled == nil {
			st.Cancelled = map[string]bool{}
		}
		st.Cancelled[req.Order] = true
		return true, nil
	})
	switch {
	case err != nil:
		internalError(w, err)
	case len(refunded) == 0:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "no_charge", "order": req.Order})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"order": req.Order, "refunded": refunded})
	}
}

func (s *server) refund(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var (
		ch    charge
		found bool
	)
	err := update(s.store, s.store.statePath, newPayments, func(st *paymentsState) (bool, error) {
		i := slices.IndexFunc(st.Charges, func(c charge) bool { return c.ID == id })
		if i < 0 {
			return false, nil
		}
		found = true
		changed := st.Charges[i].Status != "refunded"
		st.Charges[i].Status = "refunded"
		ch = st.Charges[i]
		return changed, nil
	})
	switch {
	case err != nil:
		internalError(w, err)
	case !found:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not_found", "id": id})
	default:
		writeJSON(w, http.StatusOK, ch)
	}
}

func (s *server) listCharges(w http.ResponseWriter, r *http.Request) {
	var list []charge
	if err := view(s.store, s.store.statePath, newPayments, func(st *paymentsState) { list = st.Charges }); err != nil {
		internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"charges": nonNil(list)})
}

// ---- notify ----

type email struct {
	ID    string          `json:"id"`
	Order string          `json:"order,omitempty"`
	Body  json.RawMessage `json:"body"`
}

type notifyState struct {
	Next        int64             `json:"next"`
	Emails      []email           `json:"emails"`
	Idempotency map[string]string `json:"idempotency"` // key → email id
}

func newNotify() *notifyState {
	return &notifyState{Emails: []email{}, Idempotency: map[string]string{}}
}

func (s *server) notify(mux *http.ServeMux) {
	route(mux, "/emails", map[string]http.HandlerFunc{
		"GET":  s.listEmails,
		"POST": s.sendEmail,
	})
}

func (s *server) sendEmail(w http.ResponseWriter, r *http.Request) {
	var req map[string]json.RawMessage
	if !decode(w, r, &req) {
		return
	}
	if req == nil {
		badRequest(w, "want a JSON object")
		return
	}
	var order string
	_ = json.Unmarshal(req["order"], &order) // a non-string order stays in the body only
	body, err := json.Marshal(req)
	if err != nil {
		internalError(w, err)
		return
	}
	key := r.Header.Get("Idempotency-Key")

	var (
		id       string
		replayed bool
	)
	err = update(s.store, s.store.statePath, newNotify, func(st *notifyState) (bool, error) {
		if prev, ok := st.Idempotency[key]; ok && key != "" {
			id, replayed = prev, true
			return false, nil
		}
		st.Next++
		id = fmt.Sprintf("em-%d", st.Next)
		st.Emails = append(st.Emails, email{ID: id, Order: order, Body: body})
		if key != "" {
			st.Idempotency[key] = id
		}
		return true, nil
	})
	if err != nil {
		internalError(w, err)
		return
	}
	markReplayed(w, replayed)
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id})
}

func (s *server) listEmails(w http.ResponseWriter, r *http.Request) {
	var list []email
	if err := view(s.store, s.store.statePath, newNotify, func(st *notifyState) { list = st.Emails }); err != nil {
		internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"emails": nonNil(list)})
}

// ---- health and faults ----

// fault is one armed rule: the next Count requests wait Delay, then answer
// Status (or proceed when Status is 0).
type fault struct {
	Status int    `json:"status,omitempty"`
	Delay  string `json:"delay,omitempty"`
	Count  int    `json:"count"`
}

type faultsState struct {
	Faults []fault `json:"faults"`
}

func newFaults() *faultsState { return &faultsState{Faults: []fault{}} }

func (s *server) common(mux *http.ServeMux) {
	route(mux, "/healthz", map[string]http.HandlerFunc{
		"GET": func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") },
	})
	route(mux, "/faults", map[string]http.HandlerFunc{
		"GET":    s.listFaults,
		"POST":   s.armFault,
		"DELETE": s.clearFaults,
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not_found", "path": r.URL.Path})
	})
}

func (s *server) armFault(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Status int    `json:"status"`
		Delay  string `json:"delay"`
		Count  *int   `json:"count"`
	}
	if !decode(w, r, &req) {
		return
	}
	f := fault{Status: req.Status, Count: 1}
	if req.Count != nil {
		f.Count = *req.Count
	}
	if f.Count < 1 {
		badRequest(w, `"count" must be at least 1`)
		return
	}
	if f.Status != 0 && (f.Status < 200 || f.Status > 599) {
		badRequest(w, `"status" must be from 200 to 599`)
		return
	}
	if req.Delay != "" {
		d, err := time.ParseDuration(req.Delay)
		if err != nil || d < 0 {
			badRequest(w, `"delay" must be a duration such as "3s"`)
			return
		}
		f.Delay = min(d, maxDelay).String()
	}
	if f.Status == 0 && f.Delay == "" {
		badRequest(w, `give "status", "delay" or both`)
		return
	}
	var list []fault
	err := update(s.store, s.store.faultsPath, newFaults, func(st *faultsState) (bool, error) {
		st.Faults = append(st.Faults, f)
		list = st.Faults
		return true, nil
	})
	if err != nil {
		internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"faults": list})
}

func (s *server) listFaults(w http.ResponseWriter, r *http.Request) {
	var list []fault
	if err := view(s.store, s.store.faultsPath, newFaults, func(st *faultsState) { list = st.Faults }); err != nil {
		internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"faults": nonNil(list)})
}

func (s *server) clearFaults(w http.ResponseWriter, r *http.Request) {
	err := update(s.store, s.store.faultsPath, newFaults, func(st *faultsState) (bool, error) {
		changed := len(st.Faults) > 0
		st.Faults = []fault{}
		return changed, nil
	})
	if err != nil {
		internalError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// takeFault uses up one request of the oldest armed rule, if any.
func (s *server) takeFault() (fault, bool, error) {
	// Fast path without the lock: the file is only ever replaced whole, so
	// reading it is safe, and it is nearly always empty.
	if data, err := os.ReadFile(s.store.faultsPath); errors.Is(err, os.ErrNotExist) {
		return fault{}, false, nil
	} else if err == nil && bytes.Equal(bytes.TrimSpace(data), []byte(`{"faults":[]}`)) {
		return fault{}, false, nil
	}
	var (
		f  fault
		ok bool
	)
	err := update(s.store, s.store.faultsPath, newFaults, func(st *faultsState) (bool, error) {
		if len(st.Faults) == 0 {
			return false, nil
		}
		f, ok = st.Faults[0], true
		st.Faults[0].Count--
		if st.Faults[0].Count <= 0 {
			st.Faults = st.Faults[1:]
		}
		return true, nil
	})
	return f, ok, err
}

// ---- HTTP plumbing ----

// route registers one handler per method for path, and a 405 answer listing
// them for any other method.
func route(mux *http.ServeMux, path string, byMethod map[string]http.HandlerFunc) {
	var allow []string
	for method, h := range byMethod {
		mux.HandleFunc(method+" "+path, h)
		allow = append(allow, method)
	}
	slices.Sort(allow)
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "method_not_allowed", "allow": allow})
	})
}

// statusRecorder remembers the status code a handler wrote, for the log line.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// handle injects armed faults, serves the request and writes
// "METHOD PATH STATUS DURATION [idempotency-key=...] [fault=...]" for every
// request but successful health checks, which would drown everything else.
func (s *server) handle(logger *log.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		var note string
		if r.URL.Path != "/healthz" && r.URL.Path != "/faults" {
			note = s.serveWithFaults(rec, r, next)
		} else {
			next.ServeHTTP(rec, r)
		}
		if r.URL.Path == "/healthz" && rec.status == http.StatusOK {
			return
		}
		line := fmt.Sprintf("%s %s %d %s", r.Method, r.URL.Path, rec.status, time.Since(start).Round(time.Microsecond))
		if key := r.Header.Get("Idempotency-Key"); key != "" {
			line += " idempotency-key=" + strconv.Quote(key)
		}
		if note != "" {
			line += " fault=" + note
		}
		logger.Print(line)
	})
}

// serveWithFaults applies the next armed fault, if any, around next, and
// returns a note for the log line.
func (s *server) serveWithFaults(rec *statusRecorder, r *http.Request, next http.Handler) string {
	f, ok, err := s.takeFault()
	if err != nil {
		internalError(rec, err)
		return ""
	}
	if !ok {
		next.ServeHTTP(rec, r)
		return ""
	}
	var notes []string
	if f.Delay != "" {
		d, _ := time.ParseDuration(f.Delay) // checked when armed
		notes = append(notes, "delay:"+f.Delay)
		// The server notices a client hanging up only once the request
		// body is consumed, so read it now and hand the copy on.
		body, err := io.ReadAll(http.MaxBytesReader(rec, r.Body, maxBody))
		if err != nil {
			badRequest(rec, "body: "+err.Error())
			return strings.Join(notes, ",")
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		t := time.NewTimer(min(d, maxDelay))
		select {
		case <-t.C:
		case <-s.stopping:
			t.Stop()
		case <-r.Context().Done():
			// The client is gone: nobody is left to answer, and nothing is done.
			t.Stop()
			rec.status = 499
			return strings.Join(append(notes, "client-gone"), ",")
		}
	}
	if f.Status != 0 {
		notes = append(notes, "status:"+strconv.Itoa(f.Status))
		writeJSON(rec, f.Status, map[string]any{"error": "injected_fault", "status": f.Status})
		return strings.Join(notes, ",")
	}
	next.ServeHTTP(rec, r)
	return strings.Join(notes, ",")
}

// decode reads one JSON value from the body into v, answering 400 itself when
// it cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("unexpected data after the JSON value")
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty body")
		}
		badRequest(w, "body: "+err.Error())
		return false
	}
	return true
}

func badRequest(w http.ResponseWriter, detail string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad_request", "detail": detail})
}

func internalError(w http.ResponseWriter, err error) {
	writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "internal", "detail": err.Error()})
}

func markReplayed(w http.ResponseWriter, replayed bool) {
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
