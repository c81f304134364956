import { describe, expect, it } from 'vitest';
import { formatDuration, ProgressReporter } from '../../src/train/progress.js';
import { Capture } from './helpers.js';

const rec = (iter: number, ms = 20) => ({ iter, loss: 2.5 - iter / 100, lr: 1e-3, ms, tokens_per_s: 768_000 / ms });

describe('ProgressReporter', () => {
  it('redraws one bar in place on a terminal, then prints evaluations on their own line', () => {
    const out = new Capture(true);
    const p = new ProgressReporter({ out, json: false, maxIters: 100 });
    p.iteration(rec(0));
    p.iteration(rec(1));
    p.evaluation({ iter: 2, train_loss: 2.1, val_loss: 2.2 });
    p.iteration(rec(2));
    p.finish();
    expect(out.text).not.toMatch(/\n.*iter {3}1\/100/); // no newline between bar redraws
    const frames = out.text.split('\r').filter((s) => s.startsWith('iter'));
    expect(frames[0]).toMatch(/^iter {3}1\/100 █?░+ loss 2\.5000 {2}lr 1\.00e-3 {2}38\.4k tok\/s {2}ETA 2s/);
    expect(frames[1]).toMatch(/^iter {3}2\/100 /);
    expect(out.text).toContain('\r\x1b[Kstep 2: train loss 2.1000, val loss 2.2000\n');
    expect(out.text.endsWith('\n')).toBe(true);
  });

  it('prints a plain line every log_interval iterations when not a terminal, and the last one', () => {
    const out = new Capture(false);
    const p = new ProgressReporter({ out, json: false, maxIters: 25, logInterval: 10 });
    for (let i = 0; i < 25; i++) p.iteration(rec(i));
    const lines = out.text.trim().split('\n');
    expect(lines.map((l) => l.split(':')[0])).toEqual(['iter 0', 'iter 10', 'iter 20', 'iter 24']);
    expect(lines[1]).toMatch(/^iter 10: loss 2\.4000, lr 1\.00e-3, 20\.0 ms, 38\.4k tok\/s, ETA 0s$/);
    expect(out.text).not.toContain('\r');
  });

  it('--json: exactly one JSON object per iteration and evaluation on stdout, notes on stderr', () => {
    const out = new Capture(true);
    const err = new Capture();
    const p = new ProgressReporter({ out, err, json: true, maxIters: 3 });
    p.iteration(rec(0));
    p.note('saved checkpoint');
    p.evaluation({ iter: 1, train_loss: 2, val_loss: 2.5 });
    p.finish();
    expect(out.text.split('\n')).toEqual([JSON.stringify(rec(0)), '{"iter":1,"train_loss":2,"val_loss":2.5}', '']);
    expect(err.text).toBe('saved checkpoint\n');
  });

  it('formats durations for the ETA', () => {
    expect(formatDuration(5.4)).toBe('5s');
    expect(formatDuration(125)).toBe('2m05s');
    expect(formatDuration(3 * 3600 + 61)).toBe('3h01m');
    expect(formatDuration(Number.NaN)).toBe('--');
  });
});
