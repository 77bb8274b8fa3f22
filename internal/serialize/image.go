package serialize

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"sort"

	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/tree"
)

// arrayPNG renders an array as Tiled does with Pillow
// (tiled/serialization/array.py save_to_buffer_PIL): at least two
// dimensions, values as float32 scaled so that the 1st and 99th
// percentiles span black to white (clipped), then to 8 bits as
// scikit-image's img_as_ubyte rounds them. A 2-D array is a grayscale
// image; a 3-D array with 2, 3 or 4 values on its last axis is gray with
// alpha, RGB or RGBA. Other shapes are Tiled's 406s.
func arrayPNG(a *tree.NDArray) ([]byte, error) {
	shape := a.Shape
	if len(shape) > 3 {
		return nil, httperr.NotAcceptable(fmt.Sprintf(
			"The shape of this data %d is incompatible with the requested format (%s). Slice it or choose a different format.",
			len(shape), PNG))
	}
	for len(shape) < 2 { // numpy.atleast_2d
		shape = append([]int{1}, shape...)
	}
	e := element{a.DType, a.Data}
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = e.float32(i)
	}
	channels := 1
	if len(shape) == 3 {
		channels = shape[2]
	}
	if n == 0 || (len(shape) == 3 && (channels < 2 || channels > 4)) {
		return nil, httperr.NotAcceptable(fmt.Sprintf(
			"This type is supported in general but there was an error packing this specific data: "+
				"Failed to serialize this array as png. Shape is %s, dtype is float32.", tree.PyTuple(shape)))
	}
	low, high := percentile(v, 1), percentile(v, 99)
	pix := make([]uint8, n)
	for i, x := range v {
		s := (x - low) / (high - low)
		s = float32(math.Max(0, math.Min(1, float64(s)))) // numpy.clip keeps NaN
		if x != x || s != s {
			continue // NaN casts to 0
		}
		pix[i] = uint8(math.RoundToEven(float64(s * 255)))
	}
	h, w := shape[0], shape[1]
	var img image.Image
	switch channels {
	case 1:
		g := image.NewGray(image.Rect(0, 0, w, h))
		copy(g.Pix, pix)
		img = g
	default:
		m := image.NewNRGBA(image.Rect(0, 0, w, h))
		for p := 0; p < w*h; p++ {
			px := pix[p*channels : (p+1)*channels]
			c := color.NRGBA{A: 255}
			switch channels {
			case 2:
				c.R, c.G, c.B, c.A = px[0], px[0], px[0], px[1]
			case 3:
				c.R, c.G, c.B = px[0], px[1], px[2]
			case 4:
				c.R, c.G, c.B, c.A = px[0], px[1], px[2], px[3]
			}
			m.SetNRGBA(p%w, p/w, c)
		}
		img = m
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("serialize: png: %w", err)
	}
	return buf.Bytes(), nil
}

// percentile is numpy.percentile's default (linear interpolation between
// closest ranks), in float64 as numpy computes it; NaN when any value is.
func percentile(v []float32, q float64) float32 {
	s := make([]float64, len(v))
	for i, x := range v {
		if x != x {
			return float32(math.NaN())
		}
		s[i] = float64(x)
	}
	sort.Float64s(s)
	rank := q / 100 * float64(len(s)-1)
	lo := math.Floor(rank)
	frac := rank - lo
	i := int(lo)
	if i+1 >= len(s) {
		return float32(s[len(s)-1])
	}
	return float32(s[i] + frac*(s[i+1]-s[i]))
}

// arrayHTML is Tiled's serialize_html for arrays: the PNG inline when the
// array makes one, else the CSV text in a bare page.
func arrayHTML(c Choice, a *tree.NDArray) ([]byte, error) {
	if img, err := arrayPNG(a); err == nil {
		return []byte(`<html><body><img src="data:image/png;base64,` + base64.StdEncoding.EncodeToString(img) + `"/></body></html>`), nil
	}
	text, err := arrayCSV(c, a)
	if err != nil {
		return nil, err
	}
	return []byte("<html><body>" + string(text) + "</body></html>"), nil
}
