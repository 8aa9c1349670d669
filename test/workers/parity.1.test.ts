import { defineParitySuite } from './parity.suite';

defineParitySuite(1);
