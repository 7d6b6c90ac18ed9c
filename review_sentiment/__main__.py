import sys

from review_sentiment.commands import main

sys.exit(main())
