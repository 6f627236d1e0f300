package delivery

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Marshal encodes v as compact JSON that is byte-identical to what JavaScript's
// JSON.stringify(JSON.parse(body)) produces for it, because existing receivers verify the
// signature over a body re-serialised that way (SPEC §6).
//
// encoding/json already writes fields in struct order, compactly, and with SetEscapeHTML(false)
// it leaves <, > and & alone. Three differences remain, all fixed after encoding: JavaScript
// writes U+2028 and U+2029 raw where Go escapes them, and Go writes the replacement of an
// invalid UTF-8 byte as the escape \ufffd where JavaScript (after parsing it) writes the raw
// character. Marshal is meant for the payload types of pkg/webhook (strings, integers,
// structs): maps with integer-like keys and integers beyond 2^53 have no JavaScript-identical
// form and are not supported.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n")) // Encode appends a newline; sign what is sent
	return unescapeForJS(b), nil
}

// unescapeForJS replaces the escapes \u2028, \u2029 and \ufffd in encoder output by the raw
// UTF-8 characters. In valid JSON a backslash only occurs inside a string and always starts a
// two-character escape, so walking escape by escape never mistakes an escaped backslash
// followed by the text "u2028" for the escape itself.
func unescapeForJS(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' || i+1 >= len(b) {
			out = append(out, c)
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) {
			switch string(b[i+2 : i+6]) {
			case "2028":
				out = append(out, "\u2028"...)
				i += 5
				continue
			case "2029":
				out = append(out, "\u2029"...)
				i += 5
				continue
			case "fffd":
				out = append(out, "\ufffd"...)
				i += 5
				continue
			}
		}
		out = append(out, c, b[i+1])
		i++
	}
	return out
}
