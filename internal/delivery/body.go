package delivery

import (
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"unicode/utf8"

	"github.com/docora/docora/pkg/webhook"
)

// The body of a create or update is assembled in one pass into one buffer, without going
// through encoding/json: the content is written straight into the body (base64 text needs no
// escaping; text content is escaped as Marshal would), so the largest field is neither copied
// into a string nor encoded twice. The result is byte-identical to Marshal of the
// corresponding CreateEvent or UpdateEvent (TestFileBodyMatchesMarshal, FuzzFileBody).

// contentKind says how fileBodyParts' content is written.
type contentKind int

const (
	contentText   contentKind = iota // JSON-escaped as is
	contentBase64                    // base64-encoded raw bytes
	contentRaw                       // already base64 text, written as is
)

// bodyParts are the fields of one create or update request.
type bodyParts struct {
	kind        Kind
	repo        []byte // Marshal(repository)
	path, sha   string
	size        int64
	content     []byte
	how         contentKind
	chunk       *webhook.Chunk
	previousSHA string
	commitSHA   string
	timestamp   string
}

// appendFileBody appends the JSON body of p to dst.
func appendFileBody(dst []byte, p *bodyParts) []byte {
	need := len(p.repo) + len(p.path) + len(p.sha) + len(p.previousSHA) + len(p.commitSHA) + len(p.timestamp) + 256
	switch p.how {
	case contentBase64:
		need += base64.StdEncoding.EncodedLen(len(p.content))
	default:
		need += len(p.content) + len(p.content)/16
	}
	if cap(dst)-len(dst) < need {
		nb := make([]byte, len(dst), len(dst)+need)
		copy(nb, dst)
		dst = nb
	}
	dst = append(dst, `{"repository":`...)
	dst = append(dst, p.repo...)
	dst = append(dst, `,"file":{"path":`...)
	dst = appendJSONString(dst, p.path)
	dst = append(dst, `,"sha":`...)
	dst = appendJSONString(dst, p.sha)
	dst = append(dst, `,"size":`...)
	dst = strconv.AppendInt(dst, p.size, 10)
	dst = append(dst, `,"content":"`...)
	switch p.how {
	case contentBase64:
		n := base64.StdEncoding.EncodedLen(len(p.content))
		dst = dst[:len(dst)+n] // capacity reserved above
		base64.StdEncoding.Encode(dst[len(dst)-n:], p.content)
	case contentRaw:
		dst = append(dst, p.content...)
	default:
		dst = appendEscaped(dst, p.content)
	}
	dst = append(dst, '"')
	if p.how != contentText {
		dst = append(dst, `,"content_encoding":"`+webhook.EncodingBase64+`"`...)
	}
	if c := p.chunk; c != nil {
		dst = append(dst, `,"chunk":{"id":`...)
		dst = appendJSONString(dst, c.ID)
		dst = append(dst, `,"index":`...)
		dst = strconv.AppendInt(dst, int64(c.Index), 10)
		dst = append(dst, `,"total":`...)
		dst = strconv.AppendInt(dst, int64(c.Total), 10)
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendInt(dst, c.Offset, 10)
		dst = append(dst, '}')
	}
	dst = append(dst, '}')
	if p.kind == Update {
		dst = append(dst, `,"previous_sha":`...)
		dst = appendJSONString(dst, p.previousSHA)
	}
	dst = append(dst, `,"commit_sha":`...)
	dst = appendJSONString(dst, p.commitSHA)
	dst = append(dst, `,"timestamp":`...)
	dst = appendJSONString(dst, p.timestamp)
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string, as Marshal writes it.
func appendJSONString(dst []byte, s string) []byte {
	if !utf8.ValidString(s) {
		// Invalid bytes become U+FFFD: leave that to Marshal, which cannot fail on a string.
		b, _ := Marshal(s)
		return append(dst, b...)
	}
	dst = append(dst, '"')
	dst = appendEscaped(dst, []byte(s))
	return append(dst, '"')
}

// appendEscaped appends valid UTF-8 text b escaped for a JSON string exactly as Marshal escapes
// it: `"` and `\` with a backslash; control characters as \b \f \n \r \t or \u00xx; everything
// else, U+2028, U+2029 and other non-ASCII characters included, raw (SPEC §6, JavaScript's
// JSON.stringify). Callers check that b is valid UTF-8. Runs of eight bytes that need no escape
// are skipped a word at a time.
func appendEscaped(dst, b []byte) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(b); {
		if i+8 <= len(b) && !needsEscape(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
			continue
		}
		// A word with something to escape (or the tail): byte by byte up to its end.
		end := min(i+8, len(b))
		for ; i < end; i++ {
			c := b[i]
			if c >= 0x20 && c != '"' && c != '\\' {
				continue
			}
			dst = append(dst, b[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			start = i + 1
		}
	}
	return append(dst, b[start:]...)
}

// needsEscape reports whether one of the eight bytes of w is a control character (< 0x20),
// '"' or '\\' (the classic "has a byte less than n" and "has a zero byte" word tests, which
// never miss one; bytes ≥ 0x80 never match).
func needsEscape(w uint64) bool {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	quote, backslash := w^(ones*'"'), w^(ones*'\\')
	return ((w-ones*0x20)&^w|(quote-ones)&^quote|(backslash-ones)&^backslash)&high != 0
}
