package bolt

import (
	"errors"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// Check opens the store file at path read-only and checks every page
// and that it is a Lifeline store (it has the conversations bucket).
// Backup and restore run it before trusting a file.
func Check(path string) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		if tx.Bucket(bConvs) == nil {
			return errors.New("not a Lifeline store")
		}
		return nil
	})
}
