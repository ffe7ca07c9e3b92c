package tui

import (
	"strings"
	"unicode"

	tea "charm.land/bubbletea/v2"
)

// lineInput is the one-line editor of the prompts: typing appends,
// backspace deletes, ctrl+u clears. (bubbles' textinput pulls in a
// clipboard dependency the dashboard has no use for.)
type lineInput struct {
	value  string
	digits bool // accept digits only
	limit  int  // the most runes accepted; 0 means no limit
}

// update applies a key and reports whether the value changed.
func (in *lineInput) update(msg tea.KeyPressMsg) bool {
	switch msg.String() {
	case "backspace", "ctrl+h":
		if in.value == "" {
			return false
		}
		r := []rune(in.value)
		in.value = string(r[:len(r)-1])
		return true
	case "ctrl+u":
		changed := in.value != ""
		in.value = ""
		return changed
	case "space":
		return in.insert(" ")
	}
	if msg.Mod&^tea.ModShift != 0 {
		return false
	}
	return in.insert(msg.Text)
}

// insert appends printable text, such as a typed key or a paste.
func (in *lineInput) insert(text string) bool {
	var b strings.Builder
	n := len([]rune(in.value))
	for _, r := range text {
		if !unicode.IsPrint(r) || (in.digits && !unicode.IsDigit(r)) {
			continue
		}
		if in.limit > 0 && n >= in.limit {
			break
		}
		b.WriteRune(r)
		n++
	}
	if b.Len() == 0 {
		return false
	}
	in.value += b.String()
	return true
}

// view shows the value with a block cursor.
func (in lineInput) view() string { return in.value + "█" }
