<?php
/**
 * The network-admin screen as it renders: next steps, labels, site names,
 * expiry highlight, pages and filters (timed with 10,000 domains), the queue
 * buttons, the interval field, and the forms' nonce and capability checks.
 *
 * @package Closte_Operator
 */

require_once __DIR__ . '/admin-fakes.php';

final class AdminTest extends Closte_Operator_Admin_Test_Case {

	/**
	 * Waiting, failed, expiring and checking-dns domains on one screen.
	 */
	private function mixed_listing(): void {
		Closte_WP::$state['sites'] = array(
			2 => 'Shop of Anna',
			3 => 'Blog <b>Bold</b>',
		);
		$this->listing(
			array(
				$this->entry( 'dns.example.com', array(
					'siteId'     => 2,
					'stage'      => 'checking-dns',
					'ready'      => false,
					'reason'     => 'TargetMismatch',
					'conditions' => array(
						array(
							'type'    => 'DNSReady',
							'status'  => 'False',
							'reason'  => 'TargetMismatch',
							'message' => 'dns.example.com resolves to 192.0.2.1, expected one of 127.0.0.1',
						),
					),
				) ),
				$this->entry( 'expiring.example.com', array(
					'siteId'      => 3,
					'certificate' => array(
						'issuer'   => 'CN=Simulated CA',
						'notAfter' => gmdate( 'Y-m-d\TH:i:s\Z', time() + 5 * 86400 + 600 ),
					),
				) ),
				$this->entry( 'fine.example.com', array( 'siteId' => 3 ) ),
				$this->entry( 'gone.example.com', array( 'siteId' => 77 ) ),
				$this->entry( 'rejected.example.com', array(
					'name'        => 'rejected-md',
					'stage'       => 'failed',
					'ready'       => false,
					'reason'      => 'DomainRejected',
					'message'     => 'Closte refused it',
					'certificate' => null,
				) ),
			)
		);
	}

	public function test_each_domain_shows_its_stage_label_site_name_and_next_step(): void {
		$this->mixed_listing();
		$html = $this->screen();

		$dns = self::row( $html, 'dns.example.com' );
		$this->assertStringContainsString( '<td class="closte-operator-stage">Checking DNS</td>', $dns );
		$this->assertStringContainsString( '>Not ready<', $dns );
		$this->assertStringContainsString( '>Shop of Anna</a>', $dns );
		$this->assertStringContainsString( 'site-info.php?id=2"', $dns );
		$this->assertStringContainsString( 'Point dns.example.com at 127.0.0.1 (an A/AAAA record, or a CNAME to a name)', $dns );

		$rejected = self::row( $html, 'rejected.example.com' );
		$this->assertStringContainsString( '>Failed<', $rejected );
		$this->assertStringContainsString( 'Failed: DomainRejected: Closte refused it. For the details and what to fix, run closte-operator status rejected-md.', $rejected );
		$this->assertStringContainsString( '<td class="closte-operator-expires" title="">—</td>', $rejected );

		$expiring = self::row( $html, 'expiring.example.com' );
		$this->assertStringContainsString( 'class="closte-operator-domain closte-operator-expiring" data-domain="expiring.example.com"', $html );
		$this->assertStringContainsString( 'data-expiring="true"', $expiring );
		$this->assertStringContainsString( '>in 5 days<', $expiring );
		$this->assertStringContainsString( 'The certificate expires in 5 days', $expiring );
		$this->assertStringContainsString( 'CN=Simulated CA', $expiring );
		// a site name is escaped like everything else
		$this->assertStringContainsString( '>Blog &lt;b&gt;Bold&lt;/b&gt;</a>', $expiring );

		$fine = self::row( $html, 'fine.example.com' );
		$this->assertStringContainsString( 'class="closte-operator-domain" data-domain="fine.example.com"', $html );
		$this->assertStringContainsString( '>Done<', $fine );
		$this->assertStringContainsString( '>Ready<', $fine );
		$this->assertStringContainsString( '<td class="closte-operator-next"></td>', $fine );

		$this->assertStringContainsString( '>(no such site)</a>', self::row( $html, 'gone.example.com' ) );

		// one get_sites() for the page's sites, and only those
		$this->assertCount( 1, Closte_WP::$state['get_sites'] );
		$this->assertSame( array( 2, 3, 77 ), Closte_WP::$state['get_sites'][0]['site__in'] );

		// filter counts
		$this->assertMatchesRegularExpression( '#data-filter="all" class="current" aria-current="page">All <span class="count">\(5\)</span>#', $html );
		$this->assertStringContainsString( 'data-filter="not-ready">Not ready <span class="count">(2)</span>', $html );
		$this->assertStringContainsString( 'data-filter="expiring">Certificate ends within 14 days <span class="count">(1)</span>', $html );
		$this->assertStringContainsString( '&mdash; reachable, token accepted.</p>', $html );
	}

	public function test_a_proxied_domain_is_marked_and_its_certificate_is_the_proxys(): void {
		$this->listing(
			array(
				$this->entry( 'cdn.example.com', array(
					'conditions'  => array(
						array(
							'type'    => 'DNSReady',
							'status'  => 'True',
							'reason'  => 'Proxied',
							'message' => 'proven through a proxy',
						),
					),
					'certificate' => array(
						'issuer'   => 'CN=Edge <CA>',
						'notAfter' => gmdate( 'Y-m-d\TH:i:s\Z', time() + 60 * 86400 ),
						'servedBy' => 'Proxy',
					),
				) ),
				$this->entry( 'fine.example.com' ),
			)
		);
		$html = $this->screen();
		$note = 'Served through a proxy or CDN: the certificate visitors see is the proxy&#039;s, so Closte&#039;s own certificate cannot be seen from outside.';

		$cdn = self::row( $html, 'cdn.example.com' );
		$this->assertStringContainsString( 'data-proxied="true"', $cdn );
		$this->assertStringContainsString( '<span class="closte-operator-proxied description" title="' . $note . '">via proxy/CDN</span>', $cdn );
		// the issuer is the proxy's, and escaped
		$this->assertMatchesRegularExpression( '#<td class="closte-operator-expires" title="[^"]* — the proxy&\#039;s certificate, issued by CN=Edge &lt;CA&gt;">in 60 days</td>#', $cdn );
		$this->assertStringContainsString( '<td class="closte-operator-next">' . $note . '</td>', $cdn );

		$fine = self::row( $html, 'fine.example.com' );
		$this->assertStringContainsString( 'data-proxied="false"', $fine );
		$this->assertStringNotContainsString( 'closte-operator-proxied', $fine );
		$this->assertStringNotContainsString( 'proxy', $fine );
		$this->assertStringContainsString( '<td class="closte-operator-next"></td>', $fine );
	}

	public function test_a_failed_proof_shows_what_to_fix_at_the_proxy(): void {
		$this->listing(
			array(
				$this->entry( 'parked.example.com', array(
					'stage'       => 'checking-dns',
					'ready'       => false,
					'reason'      => 'ProofUnexpected',
					'message'     => 'HTTP 200 without a proof',
					'conditions'  => array(
						array(
							'type'    => 'DNSReady',
							'status'  => 'False',
							'reason'  => 'ProofUnexpected',
							'message' => 'HTTP 200 without a proof',
						),
					),
					'certificate' => null,
				) ),
			)
		);
		$row = self::row( $this->screen(), 'parked.example.com' );
		$this->assertStringContainsString( 'data-proxied="false"', $row );
		$this->assertStringContainsString( '<td class="closte-operator-next">The proxy or host in front of parked.example.com does not pass /.well-known/closte-operator/ on to this network. Check the proxy&#039;s origin (it must be this network) and its page rules for that path. Last check: HTTP 200 without a proof.</td>', $row );
	}

	public function test_the_not_ready_filter_and_pages(): void {
		$entries = array();
		for ( $i = 0; $i < 120; $i++ ) {
			$entries[] = $this->entry( sprintf( 'n%03d.example.com', $i ), 0 === $i % 2 ? array( 'ready' => false, 'stage' => 'pending', 'reason' => '' ) : array() );
		}
		$this->listing( $entries );

		$html = $this->screen(
			array(
				'filter' => 'not-ready',
				'paged'  => '2',
			)
		);
		$this->assertSame( 10, substr_count( $html, 'class="closte-operator-domain' ) );
		$this->assertStringContainsString( 'data-domain="n100.example.com"', $html );
		$this->assertStringNotContainsString( 'data-domain="n101.example.com"', $html );
		$this->assertStringContainsString( 'data-page="2" data-pages="2"', $html );
		$this->assertStringContainsString( '<span class="displaying-num">60 domains</span>', $html );
		// the previous page keeps the filter
		$this->assertStringContainsString( 'class="prev-page button" href="http://example.test/wp-admin/network/settings.php?page=closte-operator&amp;filter=not-ready&amp;paged=1"', $html );
		$this->assertStringNotContainsString( 'class="next-page button"', $html );
		$this->assertStringContainsString( 'class="current" aria-current="page">Not ready <span class="count">(60)</span>', $html );

		$all = $this->screen();
		$this->assertSame( 50, substr_count( $all, 'class="closte-operator-domain' ) );
		$this->assertStringContainsString( 'class="next-page button" href="http://example.test/wp-admin/network/settings.php?page=closte-operator&amp;paged=2"', $all );
		$this->assertStringContainsString( 'class="last-page button" href="http://example.test/wp-admin/network/settings.php?page=closte-operator&amp;paged=3"', $all );
	}

	/**
	 * The whole screen with 10,000 domains in the listing: the JSON decoded,
	 * one pass to filter and count, one page of 50 rendered, one get_sites()
	 * of that page's sites. The time is printed (stderr) for the record.
	 */
	public function test_ten_thousand_domains_render_one_page(): void {
		$entries = array();
		$sites   = array();
		for ( $i = 0; $i < 10000; $i++ ) {
			$fields = array( 'siteId' => $i + 2 );
			if ( 0 === $i % 97 ) {
				$fields += array(
					'stage'   => 'failed',
					'ready'   => false,
					'reason'  => 'DomainRejected',
					'message' => 'refused',
				);
			}
			$entries[]           = $this->entry( sprintf( 'site%05d.example.com', $i ), $fields );
			$sites[ $i + 2 ] = sprintf( 'Site %d', $i );
		}
		Closte_WP::$state['sites'] = $sites;
		$this->listing( $entries );

		$times = array();
		foreach ( array( array(), array( 'paged' => '100' ), array( 'filter' => 'not-ready', 'paged' => '2' ) ) as $query ) {
			Closte_WP::$state['get_sites'] = array();
			$started                       = hrtime( true );
			$html                          = $this->screen( $query );
			$times[]                       = ( hrtime( true ) - $started ) / 1e6;
			$this->assertSame( 50, substr_count( $html, 'class="closte-operator-domain' ), json_encode( $query ) );
			$this->assertCount( 1, Closte_WP::$state['get_sites'] );
			$this->assertCount( 50, Closte_WP::$state['get_sites'][0]['site__in'] );
			$this->assertLessThan( 200000, strlen( $html ), 'the page grows with the list' );
		}
		$this->assertStringContainsString( 'data-domain="site04850.example.com"', $html );
		$this->assertStringContainsString( 'Not ready <span class="count">(104)</span>', $html );
		fwrite( STDERR, sprintf( "\nscreen render with 10,000 domains: %.1f ms (page 1), %.1f ms (page 100), %.1f ms (not ready, page 2)\n", ...$times ) );
	}

	/**
	 * The list is asked for before the header (load-*), once: the notices
	 * above the screen say whether the sidecar answers now.
	 */
	public function test_the_list_is_read_once_before_the_notices(): void {
		$this->transport->always( 0 );
		$this->queue->observe( $this->sidecar->domains() );
		$this->assertNotNull( $this->queue->last_unreachable() );
		$this->listing( array( $this->entry( 'a.example.com' ) ) );
		$this->transport->requests = array();

		$this->admin->menu();
		$load = Closte_WP::$state['hooks']['load-settings_page_closte-operator'][0];
		$this->assertSame( array( $this->admin, 'load' ), $load );
		$load();
		$this->assertNull( $this->queue->last_unreachable(), 'the answer closed the breaker' );
		ob_start();
		$this->admin->notice();
		$this->assertSame( '', ob_get_clean() );
		$html = $this->screen();
		$this->assertStringContainsString( 'data-domain="a.example.com"', $html );
		$this->assertSame( array( 'GET /v1/domains' ), $this->transport->lines() );
	}

	public function test_a_refused_token_and_an_absent_sidecar_say_what_to_do(): void {
		$this->transport->always( 401, '{"error":"missing or wrong bearer token"}' );
		$html = $this->screen();
		$this->assertStringContainsString( 'id="closte-operator-listing-step" data-status="401"', $html );
		$this->assertStringContainsString( 'The sidecar refuses WordPress&#039;s token.', $html );
		$this->assertStringContainsString( 'in the closte-sidecar container', $html );
		$this->assertStringNotContainsString( 'id="closte-operator-domains"', $html );

		$this->transport->always( 0 );
		$html = $this->screen();
		$this->assertStringContainsString( 'data-status="0"', $html );
		$this->assertStringContainsString( 'kubectl logs POD -c closte-sidecar', $html );
	}

	/**
	 * A conflict (409) waiting, a change rejected (400): Retry, Discard and
	 * Clear, each behind a nonce and the capability, and only as a POST.
	 */
	public function test_retry_discard_and_clear(): void {
		$this->listing( array() );
		$this->transport->answer = fn( $r ) => 'PUT' === $r['method'] ? new Closte_Operator_Result( 409, '{"error":"held by site 3"}' ) : ( 'DELETE' === $r['method'] ? new Closte_Operator_Result( 400, '{"error":"invalid domain"}' ) : new Closte_Operator_Result( 200, '{"domains":[]}' ) );
		$this->queue->attempt( Closte_Operator_Queue::put( 'held.example.com', 4 ) );
		$this->queue->attempt( Closte_Operator_Queue::put( 'other.example.com', 5 ) );
		$this->queue->attempt( Closte_Operator_Queue::delete( 'bad..example' ) );
		$this->assertSame( array( 'domain:held.example.com', 'domain:other.example.com' ), array_keys( $this->queue->entries() ) );
		$this->assertCount( 1, $this->queue->failures() );

		$html = $this->screen();
		$this->assertStringContainsString( '<tr class="closte-operator-waiting" data-key="domain:held.example.com"><td>add held.example.com (site #4)</td>', $html );
		$this->assertStringContainsString( 'action="http://example.test/wp-admin/network/edit.php?action=closte_operator_queue"', $html );
		$this->assertStringContainsString( 'value="nonce-closte_operator_queue"', $html );
		$this->assertStringContainsString( '<button type="submit" name="do" value="retry" class="button closte-operator-retry">Retry</button>', $html );
		$this->assertStringContainsString( '<button type="submit" name="do" value="discard" class="button closte-operator-discard">Discard</button>', $html );
		$this->assertStringContainsString( '<tr class="closte-operator-rejected"><td>remove bad..example</td>', $html );
		$this->assertStringContainsString( 'edit.php?action=closte_operator_clear', $html );
		$this->assertStringContainsString( '>Clear the rejected list</button>', $html );

		// refused: a bad nonce, no capability, a GET
		$_POST = array(
			'key' => 'domain:held.example.com',
			'do'  => 'discard',
		);
		foreach ( array( 'nonce_ok' => 403, 'can' => 403, 'method' => 405 ) as $what => $status ) {
			Closte_WP::reset();
			$_POST = array(
				'key' => 'domain:held.example.com',
				'do'  => 'discard',
			);
			if ( 'method' === $what ) {
				$_SERVER['REQUEST_METHOD'] = 'GET';
			} else {
				Closte_WP::$state[ $what ] = false;
			}
			try {
				$this->admin->queue_submitted();
				$this->fail( "not refused: $what" );
			} catch ( Closte_WP_Died $e ) {
				$this->assertSame( $status, $e->status, $what );
			}
			$this->assertArrayHasKey( 'domain:held.example.com', $this->queue->entries(), $what );
		}
		Closte_WP::reset();

		// Retry: still conflicting, it stays
		$_POST = array(
			'key' => 'domain:held.example.com',
			'do'  => 'retry',
		);
		try {
			$this->admin->queue_submitted();
			$this->fail( 'no redirect' );
		} catch ( Closte_WP_Redirected $e ) {
			$this->assertSame( 'http://example.test/wp-admin/network/settings.php?page=closte-operator', $e->location );
		}
		$this->assertSame( 'PUT /v1/domains/held.example.com', end( $this->transport->requests )['method'] . ' ' . substr( end( $this->transport->requests )['url'], strlen( self::SIDECAR ) ) );
		$this->assertArrayHasKey( 'domain:held.example.com', $this->queue->entries() );
		$html = $this->screen();
		$this->assertStringContainsString( 'id="closte-operator-flash" class="notice notice-warning is-dismissible closte-operator-message"><p>Still waiting: add held.example.com (site #4) (HTTP 409: held by site 3).', $html );
		// shown once
		$this->assertStringNotContainsString( 'closte-operator-flash', $this->screen() );

		// Retry once the sidecar takes it: delivered
		$this->transport->always( 200, '{}' );
		$this->assertSame(
			array(
				'type' => 'success',
				'text' => 'Delivered: add held.example.com (site #4).',
			),
			$this->admin->queue_action( 'retry', 'domain:held.example.com' )
		);
		$this->assertArrayNotHasKey( 'domain:held.example.com', $this->queue->entries() );
		$this->assertSame( 'warning', $this->admin->queue_action( 'retry', 'domain:held.example.com' )['type'] );

		// Discard
		$this->assertSame( 'Discarded: add other.example.com (site #5). The next sync writes every site\'s domains from WordPress again.', $this->admin->queue_action( 'discard', 'domain:other.example.com' )['text'] );
		$this->assertSame( array(), $this->queue->entries() );
		$this->assertSame( 'warning', $this->admin->queue_action( 'discard', 'domain:other.example.com' )['type'] );
		$this->assertSame( 'error', $this->admin->queue_action( 'explode', 'domain:other.example.com' )['type'] );

		// Clear: a bad nonce clears nothing; then it clears
		Closte_WP::$state['nonce_ok'] = false;
		try {
			$this->admin->clear_submitted();
			$this->fail( 'not refused' );
		} catch ( Closte_WP_Died $e ) {
			$this->assertSame( 403, $e->status );
		}
		$this->assertCount( 1, $this->queue->failures() );
		Closte_WP::$state['nonce_ok'] = true;
		try {
			$this->admin->clear_submitted();
		} catch ( Closte_WP_Redirected $e ) {
			$this->assertStringEndsWith( 'page=closte-operator', $e->location );
		}
		$this->assertSame( array(), $this->queue->failures() );
		$html = $this->screen();
		$this->assertStringContainsString( '<p>Cleared 1 rejected change.</p>', $html );
		$this->assertStringNotContainsString( 'closte-operator-failures', $html );
		$this->assertSame( 'The rejected list was already empty.', $this->admin->clear_rejected()['text'] );
	}

	public function test_the_interval_field_saves_10_to_300_seconds_only(): void {
		$this->listing( array() );
		$this->plugin->interval = array(
			'seconds' => 60,
			'source'  => 'setting',
			'error'   => '',
		);
		$html = $this->screen();
		$this->assertMatchesRegularExpression( '#<input type="number" class="small-text" id="closte_operator_check_interval" name="closte_operator_check_interval" min="10" max="300" step="1" value="60" />#', $html );
		$this->assertStringContainsString( 'value="nonce-closte_operator_interval"', $html );
		$this->assertStringContainsString( 'name="closte-operator-save-interval"', $html );
		$this->assertStringContainsString( 'every 60 seconds', $html );

		foreach ( array( '5', '301', 'ten', '12.5' ) as $raw ) {
			$notice = $this->admin->save_interval( $raw );
			$this->assertSame( 'error', $notice['type'], $raw );
			$this->assertStringStartsWith( 'Not saved: the DNS check interval must be a whole number of seconds from 10 to 300', $notice['text'], $raw );
		}
		$this->assertSame( array(), $this->plugin->saved, 'nothing saved from a wrong input' );

		$this->assertSame( 'The DNS check interval is now 120 seconds; the next sync gives it to the existing domains.', $this->admin->save_interval( '120' )['text'] );
		$this->assertSame( 'success', $this->admin->save_interval( '' )['type'] );
		$this->assertSame( array( 120, null ), $this->plugin->saved );

		$this->plugin->save_error = 'the option could not be written';
		$this->assertSame( 'Not saved: the option could not be written.', $this->admin->save_interval( '30' )['text'] );
		$this->plugin->save_error = '';

		// through the form: nonce and capability first
		$this->plugin->saved = array();
		foreach ( array( 'nonce_ok', 'can' ) as $what ) {
			Closte_WP::reset();
			Closte_WP::$state[ $what ] = false;
			$_POST                     = array( 'closte_operator_check_interval' => '90' );
			try {
				$this->admin->interval_submitted();
				$this->fail( "not refused: $what" );
			} catch ( Closte_WP_Died $e ) {
				$this->assertSame( 403, $e->status );
			}
		}
		$this->assertSame( array(), $this->plugin->saved );
		Closte_WP::reset();
		$_POST = array( 'closte_operator_check_interval' => '400' );
		try {
			$this->admin->interval_submitted();
		} catch ( Closte_WP_Redirected $e ) {
			$this->assertStringEndsWith( 'page=closte-operator', $e->location );
		}
		$this->assertSame( array(), $this->plugin->saved );
		$this->assertStringContainsString( 'class="notice notice-error is-dismissible closte-operator-message"><p>Not saved: the DNS check interval must be a whole number of seconds from 10 to 300 (got &quot;400&quot;).', $this->screen() );
		$_POST = array( 'closte_operator_check_interval' => '90' );
		try {
			$this->admin->interval_submitted();
		} catch ( Closte_WP_Redirected $e ) {
			$this->assertStringEndsWith( 'page=closte-operator', $e->location );
		}
		$this->assertSame( array( 90 ), $this->plugin->saved );
	}

	public function test_ultimate_multisite_makes_the_interval_read_only(): void {
		$this->listing( array() );
		$this->plugin->interval = array(
			'seconds' => 45,
			'source'  => 'ultimate-multisite',
			'error'   => '',
		);
		$html = $this->screen();
		$this->assertStringContainsString( 'value="45" readonly="readonly" disabled="disabled" />', $html );
		$this->assertStringNotContainsString( 'closte-operator-save-interval', $html );
		$this->assertStringContainsString( 'Set by Ultimate Multisite&#039;s &quot;DNS Check Interval&quot; setting (45 s)', $html );

		$notice = $this->admin->save_interval( '60' );
		$this->assertSame( 'error', $notice['type'] );
		$this->assertStringContainsString( 'change it there', $notice['text'] );
		$this->assertSame( array(), $this->plugin->saved );
	}

	public function test_the_sync_section_and_its_notice(): void {
		$this->listing( array() );
		$now                = time();
		$this->plugin->next = $now + 1800;
		$html               = $this->screen();
		$this->assertStringContainsString( '<p id="closte-operator-next-sync">Next run: in 30 mins (' . gmdate( 'Y-m-d H:i', $now + 1800 ) . ').</p>', $html );
		$this->assertStringNotContainsString( 'closte-operator-overdue', $html );
		$this->assertStringContainsString( 'It runs on WP-Cron every ' . $this->plugin->recurrence['interval'] / 3600 . ' hour', $html, 'the period set, not a fixed "hourly"' );
		$this->plugin->recurrence = array( 'name' => 'twicedaily', 'interval' => 43200, 'error' => '' );
		$this->assertStringContainsString( 'It runs on WP-Cron every 12 hours', $this->screen() );

		$this->plugin->next    = $now - 3 * 3600;
		$this->plugin->overdue = true;
		$html                  = $this->screen();
		$this->assertStringContainsString( 'id="closte-operator-overdue"', $html );
		$this->assertStringContainsString( 'The sync is overdue: it was due 3 hours ago and has not run.', $html );

		$this->plugin->recurrence['error'] = 'WordPress knows no recurrence named every-minute';
		$this->assertStringContainsString( 'is not usable: WordPress knows no recurrence named every-minute.', $this->screen() );

		// after "Sync now": the last summary, never "0 changes"
		$this->store->set(
			Closte_Operator_Sync::LAST,
			array(
				'ok'        => true,
				'time'      => $now,
				'error'     => '',
				'sites'     => 40,
				'written'   => 0,
				'queued'    => 0,
				'failed'    => 0,
				'retried'   => array(
					'done'    => 0,
					'queued'  => 0,
					'dropped' => 0,
				),
				'complete'  => false,
				'remaining' => 60,
				'intervals' => 0,
			)
		);
		$html = $this->screen( array( 'synced' => 'ok' ) );
		$this->assertStringContainsString( '<div id="closte-operator-synced" class="notice notice-success is-dismissible closte-operator-message"><p>Sync checked 40 sites: nothing to change. 60 sites remain; a follow-up run continues in the background.</p></div>', $html );
		$this->assertStringNotContainsString( 'closte-operator-synced', $this->screen() );

		$this->plugin->summary = array( 'ok' => true );
		Closte_WP::reset();
		try {
			$this->admin->sync_now();
			$this->fail( 'no redirect' );
		} catch ( Closte_WP_Redirected $e ) {
			$this->assertStringEndsWith( 'page=closte-operator&synced=ok', $e->location );
		}
		Closte_WP::$state['nonce_ok'] = false;
		$this->expectException( Closte_WP_Died::class );
		$this->admin->sync_now();
	}

	public function test_every_notice_can_be_dismissed(): void {
		$this->transport->always( 0 );
		$this->queue->attempt( Closte_Operator_Queue::put( 'a.example.com', 2 ) );
		$this->plugin->overdue             = true;
		$this->plugin->recurrence['error'] = 'unknown';
		$this->store->set(
			Closte_Operator_Sync::LAST,
			array(
				'ok'    => false,
				'time'  => time(),
				'error' => 'sidecar unreachable',
			)
		);
		Closte_WP::$state['transients'][ Closte_Operator_Admin::FLASH . '7' ] = array(
			'type' => 'success',
			'text' => 'Saved.',
		);
		$html = $this->screen( array( 'synced' => 'failed' ) );
		ob_start();
		$this->admin->notice();
		$html .= ob_get_clean();

		preg_match_all( '/class="notice [^"]*"/', $html, $notices );
		$this->assertGreaterThanOrEqual( 6, count( $notices[0] ), $html );
		foreach ( $notices[0] as $notice ) {
			$this->assertStringContainsString( 'is-dismissible', $notice );
		}
		$this->assertStringContainsString( 'closte-operator: 1 domain change is waiting for the sidecar at http://127.0.0.1:8087; it is retried automatically.', $html );
	}
}
