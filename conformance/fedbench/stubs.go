package main

import "errors"

func presence(o options) error  { return errors.New("todo") }
