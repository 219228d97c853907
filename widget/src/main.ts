// Entry point of widget.js: one IIFE that adds nothing to the page's
// globals but window.lifeline.
import { boot } from './app';
import { safe } from './util';

safe(boot)();
