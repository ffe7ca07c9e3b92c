package journal

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

// TestRecordKeysContiguous checks that sorting the keys of several
// executions keeps each one's records together and in order, whatever
// their ids share, when they started at the same time or not.
func TestRecordKeysContiguous(t *testing.T) {
	ids := []string{"a", "a\x01", "ab", "a\xff", "b", "\x01"}
	skeys := make(map[string][]byte)
	var keys [][]byte
	for i, id := range ids {
		skeys[id] = startedKey(t0.Add(time.Duration(i%2)), id)
		for seq := range uint32(300) {
			keys = append(keys, recordKey(skeys[id], seq, kindStep))
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	for _, id := range ids {
		prefix := recordPrefix(skeys[id])
		first := slices.IndexFunc(keys, func(k []byte) bool { return bytes.HasPrefix(k, prefix) })
		for seq := range uint32(300) {
			k := keys[first+int(seq)]
			got, kind, err := parseRecordKey(prefix, k)
			if err != nil || got != seq || kind != kindStep {
				t.Fatalf("id %q: key %d is %q (seq %d, %v)", id, seq, k, got, err)
			}
		}
		if end := prefixEnd(prefix); bytes.Compare(keys[first+299], end) >= 0 {
			t.Errorf("id %q: last key not before %q", id, end)
		}
	}
}

func TestTimeBytesOrder(t *testing.T) {
	times := []time.Time{
		time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, -1),
		time.Unix(0, 0),
		time.Unix(0, 1),
		t0,
		t0.Add(time.Nanosecond),
		time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := timeBytes(times[i-1]), timeBytes(times[i])
		if bytes.Compare(a[:], b[:]) >= 0 {
			t.Errorf("%v does not sort before %v", times[i-1], times[i])
		}
	}
}

func TestFlowKeys(t *testing.T) {
	skey := startedKey(t0, "exec-1")
	fk := flowKey("orders", skey)
	f, sk, err := splitFlowKey(fk)
	if err != nil || f != "orders" || !bytes.Equal(sk, skey) || startedKeyID(sk) != "exec-1" {
		t.Errorf("splitFlowKey(%q) = %q, %q, %v", fk, f, sk, err)
	}
	if !bytes.HasPrefix(fk, flowPrefix("orders")) || bytes.HasPrefix(fk, flowPrefix("order")) {
		t.Errorf("flow key %q and its prefixes", fk)
	}
}
