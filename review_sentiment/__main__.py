import sys

from review_sentiment.cli import main

sys.exit(main())
