;; The per-byte work of a dump and of a load's check, in WebAssembly (row-kernels.ts runs it):
;; the row checksum (MurmurHash3_x86_128 of each text-protocol row, summed: checksum.ts) and the scan
;; for bytes a SQL text literal cannot hold as is (sql-encode.ts). V8 runs these 4x (hash) and 6x
;; (scan, 16 bytes at a time with SIMD) faster than the same work in JavaScript, which has no
;; unaligned 32-bit load, no rotate and no vectors; they were two thirds of a dump's CPU.
;;
;; Edit this file, then run `npm run build:wasm`: row-kernels-binary.ts holds the module it
;; assembles, and a test fails when the two differ.
;;
;; Memory: the caller keeps 16 readable bytes after any range it passes in (the hash's tail and the
;; scan read whole words and vectors past the end and ignore the extra bytes).
(module
  (memory (export "memory") 1)
  (global $h1 (mut i32) (i32.const 0))
  (global $h2 (mut i32) (i32.const 0))
  (global $h3 (mut i32) (i32.const 0))
  (global $h4 (mut i32) (i32.const 0))

  ;; the word at a, or only its n low bytes when n < 4 (little-endian); 0 when n <= 0
  (func $part (param $a i32) (param $n i32) (result i32)
    (if (i32.ge_s (local.get $n) (i32.const 4)) (then (return (i32.load (local.get $a)))))
    (if (i32.le_s (local.get $n) (i32.const 0)) (then (return (i32.const 0))))
    (i32.and (i32.load (local.get $a)) (i32.shr_u (i32.const -1) (i32.sub (i32.const 32) (i32.shl (local.get $n) (i32.const 3))))))

  (func $fmix (param $h i32) (result i32)
    (local.set $h (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 16))))
    (local.set $h (i32.mul (local.get $h) (i32.const 0x85ebca6b)))
    (local.set $h (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 13))))
    (local.set $h (i32.mul (local.get $h) (i32.const 0xc2b2ae35)))
    (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 16))))

  ;; MurmurHash3_x86_128, seed 0, of [s, e) into $h1..$h4
  (func $mm3 (param $s i32) (param $e i32)
    (local $h1 i32) (local $h2 i32) (local $h3 i32) (local $h4 i32)
    (local $k1 i32) (local $k2 i32) (local $k3 i32) (local $k4 i32)
    (local $i i32) (local $rest i32) (local $len i32)
    (local.set $i (local.get $s))
    (local.set $len (i32.sub (local.get $e) (local.get $s)))
    (block $tail
      (loop $blocks
        (br_if $tail (i32.gt_u (i32.add (local.get $i) (i32.const 16)) (local.get $e)))
        (local.set $k1 (i32.load (local.get $i)))
        (local.set $k2 (i32.load offset=4 (local.get $i)))
        (local.set $k3 (i32.load offset=8 (local.get $i)))
        (local.set $k4 (i32.load offset=12 (local.get $i)))
        (local.set $h1 (i32.xor (local.get $h1) (i32.mul (i32.rotl (i32.mul (local.get $k1) (i32.const 0x239b961b)) (i32.const 15)) (i32.const 0xab0e9789))))
        (local.set $h1 (i32.add (i32.mul (i32.add (i32.rotl (local.get $h1) (i32.const 19)) (local.get $h2)) (i32.const 5)) (i32.const 0x561ccd1b)))
        (local.set $h2 (i32.xor (local.get $h2) (i32.mul (i32.rotl (i32.mul (local.get $k2) (i32.const 0xab0e9789)) (i32.const 16)) (i32.const 0x38b34ae5))))
        (local.set $h2 (i32.add (i32.mul (i32.add (i32.rotl (local.get $h2) (i32.const 17)) (local.get $h3)) (i32.const 5)) (i32.const 0x0bcaa747)))
        (local.set $h3 (i32.xor (local.get $h3) (i32.mul (i32.rotl (i32.mul (local.get $k3) (i32.const 0x38b34ae5)) (i32.const 17)) (i32.const 0xa1e38b93))))
        (local.set $h3 (i32.add (i32.mul (i32.add (i32.rotl (local.get $h3) (i32.const 15)) (local.get $h4)) (i32.const 5)) (i32.const 0x96cd1c35)))
        (local.set $h4 (i32.xor (local.get $h4) (i32.mul (i32.rotl (i32.mul (local.get $k4) (i32.const 0xa1e38b93)) (i32.const 18)) (i32.const 0x239b961b))))
        (local.set $h4 (i32.add (i32.mul (i32.add (i32.rotl (local.get $h4) (i32.const 13)) (local.get $h1)) (i32.const 5)) (i32.const 0x32ac3b17)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $blocks)))
    (local.set $rest (i32.sub (local.get $e) (local.get $i)))
    (if (i32.gt_s (local.get $rest) (i32.const 12)) (then
      (local.set $h4 (i32.xor (local.get $h4) (i32.mul (i32.rotl (i32.mul (call $part (i32.add (local.get $i) (i32.const 12)) (i32.sub (local.get $rest) (i32.const 12))) (i32.const 0xa1e38b93)) (i32.const 18)) (i32.const 0x239b961b))))))
    (if (i32.gt_s (local.get $rest) (i32.const 8)) (then
      (local.set $h3 (i32.xor (local.get $h3) (i32.mul (i32.rotl (i32.mul (call $part (i32.add (local.get $i) (i32.const 8)) (i32.sub (local.get $rest) (i32.const 8))) (i32.const 0x38b34ae5)) (i32.const 17)) (i32.const 0xa1e38b93))))))
    (if (i32.gt_s (local.get $rest) (i32.const 4)) (then
      (local.set $h2 (i32.xor (local.get $h2) (i32.mul (i32.rotl (i32.mul (call $part (i32.add (local.get $i) (i32.const 4)) (i32.sub (local.get $rest) (i32.const 4))) (i32.const 0xab0e9789)) (i32.const 16)) (i32.const 0x38b34ae5))))))
    (if (i32.gt_s (local.get $rest) (i32.const 0)) (then
      (local.set $h1 (i32.xor (local.get $h1) (i32.mul (i32.rotl (i32.mul (call $part (local.get $i) (local.get $rest)) (i32.const 0x239b961b)) (i32.const 15)) (i32.const 0xab0e9789))))))
    (local.set $h1 (i32.xor (local.get $h1) (local.get $len)))
    (local.set $h2 (i32.xor (local.get $h2) (local.get $len)))
    (local.set $h3 (i32.xor (local.get $h3) (local.get $len)))
    (local.set $h4 (i32.xor (local.get $h4) (local.get $len)))
    (local.set $h1 (i32.add (i32.add (local.get $h1) (local.get $h2)) (i32.add (local.get $h3) (local.get $h4))))
    (local.set $h2 (i32.add (local.get $h2) (local.get $h1)))
    (local.set $h3 (i32.add (local.get $h3) (local.get $h1)))
    (local.set $h4 (i32.add (local.get $h4) (local.get $h1)))
    (local.set $h1 (call $fmix (local.get $h1)))
    (local.set $h2 (call $fmix (local.get $h2)))
    (local.set $h3 (call $fmix (local.get $h3)))
    (local.set $h4 (call $fmix (local.get $h4)))
    (local.set $h1 (i32.add (i32.add (local.get $h1) (local.get $h2)) (i32.add (local.get $h3) (local.get $h4))))
    (global.set $h1 (local.get $h1))
    (global.set $h2 (i32.add (local.get $h2) (local.get $h1)))
    (global.set $h3 (i32.add (local.get $h3) (local.get $h1)))
    (global.set $h4 (i32.add (local.get $h4) (local.get $h1))))

  ;; the hash of [s, e) as h1..h4 at out
  (func (export "hash") (param $s i32) (param $e i32) (param $out i32)
    (call $mm3 (local.get $s) (local.get $e))
    (i32.store (local.get $out) (global.get $h1))
    (i32.store offset=4 (local.get $out) (global.get $h2))
    (i32.store offset=8 (local.get $out) (global.get $h3))
    (i32.store offset=12 (local.get $out) (global.get $h4)))

  ;; rows text-protocol rows from p (each after 4 unread bytes), cols values each, ending by end:
  ;; adds each row's hash, as a 128-bit big-endian number, to the 4 words at acc; returns where the
  ;; rows ended (past end when they do not fit: the caller reports it)
  (func (export "sum_rows") (param $p i32) (param $end i32) (param $rows i32) (param $cols i32) (param $acc i32) (result i32)
    (local $r i32) (local $c i32) (local $q i32) (local $f i32) (local $hi i64) (local $lo i64) (local $add i64) (local $nlo i64)
    (local.set $hi (i64.or (i64.shl (i64.extend_i32_u (i32.load (local.get $acc))) (i64.const 32)) (i64.extend_i32_u (i32.load offset=4 (local.get $acc)))))
    (local.set $lo (i64.or (i64.shl (i64.extend_i32_u (i32.load offset=8 (local.get $acc))) (i64.const 32)) (i64.extend_i32_u (i32.load offset=12 (local.get $acc)))))
    (block $out
      (loop $row
        (br_if $out (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $q (local.get $p))
        (local.set $c (i32.const 0))
        (block $walked
          (loop $col
            (br_if $walked (i32.ge_u (local.get $c) (local.get $cols)))
            (br_if $walked (i32.ge_u (local.get $q) (local.get $end)))
            (local.set $f (i32.load8_u (local.get $q)))
            (if (i32.lt_u (local.get $f) (i32.const 0xfb))
              (then (local.set $q (i32.add (local.get $q) (i32.add (local.get $f) (i32.const 1)))))
              (else (if (i32.eq (local.get $f) (i32.const 0xfb))
                (then (local.set $q (i32.add (local.get $q) (i32.const 1))))
                (else (if (i32.eq (local.get $f) (i32.const 0xfc))
                  (then (local.set $q (i32.add (local.get $q) (i32.add (i32.load16_u offset=1 (local.get $q)) (i32.const 3)))))
                  (else (if (i32.eq (local.get $f) (i32.const 0xfd))
                    (then (local.set $q (i32.add (local.get $q) (i32.add (i32.shr_u (i32.load (local.get $q)) (i32.const 8)) (i32.const 4)))))
                    (else (local.set $q (i32.add (local.get $q) (i32.add (i32.load offset=1 (local.get $q)) (i32.const 9))))))))))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $col)))
        ;; a row that does not end by end (or a column count it does not hold) is the caller's error
        (if (i32.or (i32.gt_u (local.get $q) (local.get $end)) (i32.lt_u (local.get $c) (local.get $cols)))
          (then (local.set $p (i32.add (local.get $end) (i32.const 1))) (br $out)))
        (call $mm3 (local.get $p) (local.get $q))
        (local.set $add (i64.or (i64.shl (i64.extend_i32_u (global.get $h3)) (i64.const 32)) (i64.extend_i32_u (global.get $h4))))
        (local.set $nlo (i64.add (local.get $lo) (local.get $add)))
        (local.set $hi (i64.add (i64.add (local.get $hi) (i64.or (i64.shl (i64.extend_i32_u (global.get $h1)) (i64.const 32)) (i64.extend_i32_u (global.get $h2))))
          (i64.extend_i32_u (i64.lt_u (local.get $nlo) (local.get $lo)))))
        (local.set $lo (local.get $nlo))
        (local.set $p (local.get $q))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row)))
    (i32.store (local.get $acc) (i32.wrap_i64 (i64.shr_u (local.get $hi) (i64.const 32))))
    (i32.store offset=4 (local.get $acc) (i32.wrap_i64 (local.get $hi)))
    (i32.store offset=8 (local.get $acc) (i32.wrap_i64 (i64.shr_u (local.get $lo) (i64.const 32))))
    (i32.store offset=12 (local.get $acc) (i32.wrap_i64 (local.get $lo)))
    (local.get $p))

  ;; the first index in [i, end) of NUL, LF, CR, backslash, quote, ^Z or a byte >= 0x80, else end;
  ;; reads up to 15 bytes past end
  (func (export "next_special") (param $i i32) (param $end i32) (result i32)
    (local $v v128) (local $m i32)
    (block $none
      (loop $l
        (br_if $none (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $v (v128.load (local.get $i)))
        (local.set $m (i8x16.bitmask
          (v128.or
            (v128.or (local.get $v) (i8x16.eq (local.get $v) (v128.const i8x16 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0)))
            (v128.or
              (v128.or (i8x16.eq (local.get $v) (v128.const i8x16 0x27 0x27 0x27 0x27 0x27 0x27 0x27 0x27 0x27 0x27 0x27 0x27 0x27 0x27 0x27 0x27))
                       (i8x16.eq (local.get $v) (v128.const i8x16 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c)))
              (v128.or
                (v128.or (i8x16.eq (local.get $v) (v128.const i8x16 0x0a 0x0a 0x0a 0x0a 0x0a 0x0a 0x0a 0x0a 0x0a 0x0a 0x0a 0x0a 0x0a 0x0a 0x0a 0x0a))
                         (i8x16.eq (local.get $v) (v128.const i8x16 0x0d 0x0d 0x0d 0x0d 0x0d 0x0d 0x0d 0x0d 0x0d 0x0d 0x0d 0x0d 0x0d 0x0d 0x0d 0x0d)))
                (i8x16.eq (local.get $v) (v128.const i8x16 0x1a 0x1a 0x1a 0x1a 0x1a 0x1a 0x1a 0x1a 0x1a 0x1a 0x1a 0x1a 0x1a 0x1a 0x1a 0x1a)))))))
        (if (local.get $m) (then
          (local.set $i (i32.add (local.get $i) (i32.ctz (local.get $m))))
          (return (select (local.get $i) (local.get $end) (i32.lt_u (local.get $i) (local.get $end))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $l)))
    (local.get $end))
)
