package admin

import (
	"errors"
	"net/http"
)

// StatusError is an error with the HTTP status code the admin API answers
// it with. The controller returns one (usually through BadRequest,
// NotFound or Conflict) when a request is at fault rather than the gateway, and the
// Client returns one, wrapped with the operation, for every non-2xx
// answer, so callers on both sides branch with errors.As.
//
// Its message is the wrapped error's alone: the code travels beside it in
// the HTTP answer, not inside it.
type StatusError struct {
	// Code is an HTTP status code, 400 to 599.
	Code int
	Err  error
}

// Error returns the wrapped error's message.
func (e *StatusError) Error() string {
	if e.Err == nil {
		return http.StatusText(e.Code)
	}
	return e.Err.Error()
}

// Unwrap returns the wrapped error.
func (e *StatusError) Unwrap() error { return e.Err }

// BadRequest marks err as the request's fault, for example an unknown
// service or a replica count outside the autoscale bounds: the server
// answers 400 with err's message. The result can itself be wrapped with
// %w.
func BadRequest(err error) error {
	return &StatusError{Code: http.StatusBadRequest, Err: err}
}

// NotFound marks err as naming something that does not exist: the server
// answers 404 with err's message.
func NotFound(err error) error {
	return &StatusError{Code: http.StatusNotFound, Err: err}
}

// Conflict marks err as refused because of the current state of what it
// names, for example a retry of an execution that is still running: the
// server answers 409 with err's message.
func Conflict(err error) error {
	return &StatusError{Code: http.StatusConflict, Err: err}
}

// statusOf returns the HTTP status code that answers err: the code of the
// outermost *StatusError in its chain, else 500.
func statusOf(err error) int {
	var se *StatusError
	if errors.As(err, &se) && se.Code >= 400 && se.Code <= 599 {
		return se.Code
	}
	return http.StatusInternalServerError
}
