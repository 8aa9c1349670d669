import { defineBadInputSuite } from './bad-input.suite';

defineBadInputSuite(2);
