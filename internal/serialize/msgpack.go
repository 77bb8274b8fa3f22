package serialize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// MsgpackFromJSON re-encodes a JSON document as msgpack, the other
// representation of Tiled's json_or_msgpack answers. Objects keep their key
// order; numbers written without a fraction or exponent become integers
// and the others floats, as the Python values behind Tiled's JSON would be
// packed. The JSON is this server's own output, so it is well formed; an
// error means a bug, not a client mistake.
func MsgpackFromJSON(src []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	v, err := readOrdered(dec)
	if err != nil {
		return nil, fmt.Errorf("serialize: msgpack: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("serialize: msgpack: trailing data after the JSON value")
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := writeOrdered(enc, v); err != nil {
		return nil, fmt.Errorf("serialize: msgpack: %w", err)
	}
	return buf.Bytes(), nil
}

// ordered is a JSON object with its keys in document order.
type ordered struct {
	keys []string
	vals []any
}

func readOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &ordered{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := readOrdered(dec)
				if err != nil {
					return nil, err
				}
				o.keys = append(o.keys, k.(string))
				o.vals = append(o.vals, v)
			}
			_, err := dec.Token() // '}'
			return o, err
		case '[':
			list := []any{}
			for dec.More() {
				v, err := readOrdered(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := dec.Token() // ']'
			return list, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	}
	return tok, nil
}

func writeOrdered(enc *msgpack.Encoder, v any) error {
	switch t := v.(type) {
	case nil:
		return enc.EncodeNil()
	case bool:
		return enc.EncodeBool(t)
	case string:
		return enc.EncodeString(t)
	case json.Number:
		s := t.String()
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return enc.EncodeInt(i)
			}
			if u, err := strconv.ParseUint(s, 10, 64); err == nil {
				return enc.EncodeUint(u)
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		return enc.EncodeFloat64(f)
	case []any:
		if err := enc.EncodeArrayLen(len(t)); err != nil {
			return err
		}
		for _, x := range t {
			if err := writeOrdered(enc, x); err != nil {
				return err
			}
		}
		return nil
	case *ordered:
		if err := enc.EncodeMapLen(len(t.keys)); err != nil {
			return err
		}
		for i, k := range t.keys {
			if err := enc.EncodeString(k); err != nil {
				return err
			}
			if err := writeOrdered(enc, t.vals[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unexpected JSON value %T", v)
}
